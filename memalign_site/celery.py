"""The Celery app: every setting comes from Django settings (CELERY_*); tasks live in memory/tasks.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memalign_site.settings")

app = Celery("memalign_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="memalign.ping", acks_late=False)
def ping() -> str:
    """Answer the health page's round trip through a worker."""
    return "pong"
