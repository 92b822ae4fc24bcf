"""The judging app's Celery tasks: they take ids, re-read the database, and are safe to run twice."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from judging import learned, run_repair, runs, teaching
from judging.dispatch import request_queue_ranking
from memory.dispatch import key
from memory.redis_client import get_redis
from memory.tasks import RETRY
from reviews.models import Feedback, Project, Sample


@shared_task(acks_late=True, **RETRY)
def judge_chunk(run_id: int, index: int) -> str:
    """Judge one chunk of a run (any worker may take any chunk); safe to redeliver, and retried after a
    transient error (what it judged stays: the retry skips it)."""
    return runs.judge_chunk(run_id, index)


@shared_task(acks_late=True, **RETRY)
def rank_queue(project_id: int) -> dict[str, Any]:
    """Store the review queue's teaching order (judging/teaching.py) from the stored sample vectors."""
    get_redis().delete(key("rank-queued", project_id))  # feedback saved from now on queues the next run
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": "gone"}
    return {"ranked": teaching.rank(project)}


@shared_task(acks_late=True)
def train_learned_judge(project_id: int) -> dict[str, Any]:
    """Train the project's learned judge from its final labels (judging/learned.py); safe to run twice."""
    get_redis().delete(key("learned-queued", project_id))  # labels saved from now on queue the next training
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return {"project": "gone"}
    row = learned.train(project)
    return {"labels": row.labels, "not_trained": row.not_trained, "failure": row.failure}


@shared_task(acks_late=True, **RETRY)
def repair_rankings() -> dict[str, Any]:
    """Periodic (Celery beat): rank the queue of every project with feedback whose teaching order misses a sample
    (a ranking was never dispatched: the broker was down)."""
    queued = []
    for project in Project.objects.filter(pk__in=Feedback.objects.values("project_id")):
        if Sample.objects.visible(project).filter(priority__isnull=True).exists() and request_queue_ranking(project.pk):
            queued.append(project.slug)
    return {"ranking queued": queued}


@shared_task(acks_late=True, **RETRY)
def repair_runs() -> dict[str, Any]:
    """Periodic (Celery beat, every MEMALIGN_RUN_WATCH_SECONDS) and when a worker connects: queue again the
    chunks of runs nobody is working on (judging/run_repair.py)."""
    return {"re-queued runs": run_repair.heal()}


# Names these tasks had before they moved out of memory/tasks.py: messages already queued under them (a broker
# that keeps its queue across the upgrade) still run.
@shared_task(name="memory.tasks.judge_chunk", acks_late=True, **RETRY)
def judge_chunk_queued_before_the_move(run_id: int, index: int) -> str:
    return runs.judge_chunk(run_id, index)


@shared_task(name="memory.tasks.rank_queue", acks_late=True, **RETRY)
def rank_queue_queued_before_the_move(project_id: int) -> dict[str, Any]:
    ranked: dict[str, Any] = rank_queue(project_id)
    return ranked
