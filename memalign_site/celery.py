"""The Celery app: every setting comes from Django settings (CELERY_*); tasks live in memory/tasks.py."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memalign_site.settings")

app = Celery("memalign_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="memalign.ping", acks_late=False)
def ping() -> str:
    """Answer the health page's round trip through a worker."""
    return "pong"


@worker_process_init.connect
def load_embedding_model(**kwargs) -> None:
    """Load the embedding model and the Anthropic SDK (seconds of imports) when a worker process starts, so the
    first critique and the first distillation are not the slow ones."""
    import memory.llm.anthropic  # noqa: F401
    from memory.embeddings import embed

    embed(["warm-up"])
