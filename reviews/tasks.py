"""The reviews app's Celery tasks: imports in the background (reviews/import_jobs.py) and their repair."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from reviews import import_jobs


# No automatic retry: a failed import is undone and says so on its page. 200,000 rows take about a minute;
# the limits leave room for a slow database and stay inside the broker's visibility timeout (memalign.E011).
@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1860)
def run_import(import_id: int) -> str:
    """Read, validate and write a stored upload; safe to deliver twice."""
    return import_jobs.run(import_id)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=1, max_retries=5)
def repair_imports() -> dict[str, Any]:
    """Periodic (Celery beat) and when a worker connects: queue again imports whose message was lost."""
    ids = import_jobs.requeue_lost()
    for import_id in ids:
        run_import.delay(import_id)
    return {"imports queued again": ids}
