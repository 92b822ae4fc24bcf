"""The evaluation app's Celery tasks: learning-curve evaluations on scratch memory, and their repair."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError

from evaluation import curves
from evaluation.models import Evaluation

log = logging.getLogger(__name__)
EVALUATION_WAIT_SECONDS = 5  # a second evaluation of a project waits (queued) and looks again this often


@shared_task(bind=True, acks_late=True, max_retries=None, soft_time_limit=3600, time_limit=3660)
def run_evaluation(self: Task[Any, Any], evaluation_id: int) -> str:
    """Run a queued evaluation on scratch memory; a second one on the same project waits for the first."""
    record = Evaluation.objects.select_related("project").filter(pk=evaluation_id).first()
    if record is None or record.finished:
        return "gone" if record is None else record.status
    if record.status == Evaluation.Status.RUNNING:
        # Redelivered: the worker that ran it died. Its scratch memory is dropped; the record says failed.
        curves.abandon(record)
        return "failed"
    try:
        curves.run(record, wait=0)
    except curves.EvaluationBusy:
        raise self.retry(countdown=EVALUATION_WAIT_SECONDS) from None
    except Exception as error:  # recorded on the evaluation, which the page shows
        log.warning("evaluation %s failed: %s", evaluation_id, error)
        return "failed"
    return "done"


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=1, max_retries=5)
def repair_evaluations() -> dict[str, Any]:
    """Periodic (Celery beat): evaluations whose worker died are marked failed and their scratch memory dropped."""
    return {"evaluation scratch": curves.repair()}


# The name this task had before it moved out of memory/tasks.py: a message already queued under it still runs.
@shared_task(
    name="memory.tasks.run_evaluation",
    bind=True,
    acks_late=True,
    max_retries=None,
    soft_time_limit=3600,
    time_limit=3660,
)
def run_evaluation_queued_before_the_move(self: Task[Any, Any], evaluation_id: int) -> str:
    return str(run_evaluation(evaluation_id))
