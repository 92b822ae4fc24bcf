"""The Celery app: every setting comes from Django settings (CELERY_*); each app's tasks live in its tasks.py."""

import logging
import os
from typing import Any

from celery import Celery, bootsteps
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memalign_site.settings")

app = Celery("memalign_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
log = logging.getLogger(__name__)


class RepairOnConnect(bootsteps.StartStopStep):
    """Queue the memory repair each time a worker (re)connects to the broker.

    During a broker outage saves keep working but their memory work is not dispatched; this runs the repair
    as soon as the broker is back rather than at the next periodic run. Workers that connect together coalesce
    on a flag, which the memory's repair clears when it starts: a worker replacing a killed one a few seconds
    later queues a repair of its own.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, consumer) -> None:
        from django.conf import settings

        from memory.dispatch import repair_queued_key
        from memory.redis_client import get_redis

        if not getattr(settings, "MEMALIGN_REPAIR_ON_CONNECT", True):
            return
        try:
            if get_redis().set(repair_queued_key(), 1, nx=True, ex=30):
                for task in settings.MEMALIGN_REPAIR_TASKS:
                    consumer.app.send_task(task, retry=False, ignore_result=True)
        except Exception:  # the broker went away again: the next reconnect tries again
            log.warning("could not queue the repair after connecting", exc_info=True)


app.steps["consumer"].add(RepairOnConnect)


def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str] | None:
    """Send the CPU-bound tasks to the embedding queue (settings.MEMALIGN_EMBED_TASKS); the rest to the default."""
    from django.conf import settings

    return {"queue": settings.MEMALIGN_EMBED_QUEUE} if name in settings.MEMALIGN_EMBED_TASKS else None


@app.task(name="memalign.ping", acks_late=False)
def ping() -> str:
    """Answer the health page's round trip through a worker."""
    return "pong"


@worker_init.connect
def refuse_misconfiguration(**kwargs) -> None:
    """Stop a worker whose settings have errors (memalign_site/checks.py), as the web server does."""
    from memalign_site.checks import refuse_to_start

    refuse_to_start()


@worker_process_init.connect
def load_embedding_model(**kwargs) -> None:
    """Load the embedding model and the Anthropic SDK (seconds of imports) when a worker process starts, so the
    first critique and the first distillation are not the slow ones."""
    import memory.llm.anthropic  # noqa: F401
    from memory.embeddings import embed

    embed(["warm-up"])
