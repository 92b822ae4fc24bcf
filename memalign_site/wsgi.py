import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memalign_site.settings")
application = get_wsgi_application()

from memalign_site.checks import refuse_to_start  # noqa: E402  (after setup: the checks read the settings)

refuse_to_start()
