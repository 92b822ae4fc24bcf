import os

# A web worker serves one request at a time: its numpy products are small (an item against a project's
# principles), and OpenBLAS's extra threads only spin after each one, on cores the embedding model and the other
# workers need. Set before numpy is first imported. Measured: the judge API's CPU per call halved (BENCHMARKS.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from django.core.wsgi import get_wsgi_application  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memalign_site.settings")
application = get_wsgi_application()

from memalign_site.checks import refuse_to_start  # noqa: E402  (after setup: the checks read the settings)

refuse_to_start()


def _warm_up() -> None:
    """Pay at boot what each web worker's first judgment paid: importing the Anthropic SDK (about 2 s here) and
    loading the embedding model (0.4 s). A worker accepts requests once it is warm, so none of them waits."""
    import anthropic  # noqa: F401

    from memory import embeddings

    embeddings.load()


_warm_up()
