"""Aligned-judge runs: which samples, one run at a time per project, chunks any worker can take.

A run fixes its samples when it is created and is cut into chunks of `chunk_size`; `tasks.judge_chunk` takes
one chunk by index. Inside a chunk the working memories are built in one batch (one embedding call, one
store query), then the provider calls run in threads, each holding one of the project's provider slots
(`memory.limiter`), so the project's concurrency holds across every worker. A chunk skips the samples the run
already judged, so a redelivered chunk (a worker killed mid-chunk) never doubles a verdict. A finished run
stores its agreement with the experts (judging.run_agreement); its verdicts are listed and exported by
judging.run_listing.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from judging import checks, confidence, dispatch, judge, run_repair
from judging.models import Judgement, JudgeRun
from judging.run_agreement import stored_agreement
from memory import budget
from memory.limiter import provider_slot
from memory.llm import get_provider
from memory.llm.base import Provider, ProviderError, Usage, Verdict, WorkingMemory
from reviews import queue
from reviews.models import Feedback, Project, Sample

log = logging.getLogger(__name__)

CHUNK_SIZE = 32  # at 8 calls in flight and 1-3 s a call, a chunk takes 4-12 s: cancel and progress stay prompt
OVERLOAD_ATTEMPTS = 6  # a 429/529 that outlasted the SDK's retries is tried again this many times, backing off
OVERLOAD_BACKOFF_MAX = 30.0
CANCEL_POLL_SECONDS = 1.0
# A run whose first chunks all failed, with not one verdict, stops: the provider is down, not one sample bad.
FAIL_FAST_AFTER = 3
ACTIVE = (JudgeRun.Status.QUEUED, JudgeRun.Status.RUNNING)


class RunError(Exception):
    """A run cannot be created or changed as asked; the message says why."""


def scope_samples(
    project: Project, scope: str, user: User | None = None, queue_query: queue.QueueQuery | None = None
) -> QuerySet[Sample]:
    """Return the samples a scope covers, in id order."""
    samples = Sample.objects.filter(project=project).order_by("id")
    reviewed = Exists(Feedback.objects.filter(sample=OuterRef("pk")))
    if scope == JudgeRun.Scope.REVIEWED:
        return samples.filter(reviewed)
    if scope == JudgeRun.Scope.UNREVIEWED:
        return samples.filter(~reviewed)
    if scope == JudgeRun.Scope.ALL:
        return samples
    if scope == JudgeRun.Scope.QUEUE:
        return queue.samples(project, user, queue_query or queue.QueueQuery(filter="all"))
    raise RunError("Choose which samples to judge: reviewed, unreviewed, all, or the queue filter's.")


def describe(query: queue.QueueQuery) -> str:
    parts = [queue.FILTERS[query.filter]]
    parts += [
        f"{name} {value}"
        for name, value in (("expert label", query.label), ("judge verdict", query.judge), ("search", query.q))
        if value
    ]
    return ", ".join(parts)


def start(
    project: Project,
    user: User | None,
    scope: str,
    queue_query: queue.QueueQuery | None = None,
    limit: int | None = None,
    in_process: bool = False,
    chunk_size: int | None = None,
    sample_ids: list[int] | None = None,
    origin: str = "site",
) -> JudgeRun:
    """Create a run over the scope's samples; it starts at once, or after the project's active run ends.

    The one-run-at-a-time rule is decided here, under a lock on the project's row (an immediate transaction
    on SQLite), so two concurrent starts never both dispatch. `in_process` (manage.py judge) marks the run
    running without queueing its chunks, for the caller to judge them itself, and refuses to wait.
    `sample_ids` (the ITEMS scope) names the samples instead of a scope.
    """
    if limit is not None and limit < 1:
        raise RunError("The limit must be a positive number of samples.")
    if scope == JudgeRun.Scope.ITEMS:
        sample_ids = sorted(set(sample_ids or []))[:limit]
    else:
        sample_ids = list(scope_samples(project, scope, user, queue_query).values_list("id", flat=True)[:limit])
    if not sample_ids:
        raise RunError("There are no samples in that scope to judge.")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        busy = JudgeRun.objects.filter(project=project, status__in=ACTIVE).exists()
        if busy and in_process:
            raise RunError("Another run of this project is active; try again when it has finished.")
        run = JudgeRun.objects.create(
            project=project,
            created_by=user,
            scope=scope,
            origin=JudgeRun.Origin.COMMAND if in_process else origin,
            sample_ids=sample_ids,
            total=len(sample_ids),
            chunk_size=chunk_size or CHUNK_SIZE,
            memory_version=budget.latest_version(project),
            scope_detail=describe(queue_query) if scope == JudgeRun.Scope.QUEUE and queue_query else "",
        )
        if not busy:
            _dispatch(run, queue_chunks=not in_process)
    run.refresh_from_db()
    return run


def _dispatch(run: JudgeRun, queue_chunks: bool = True) -> None:
    """Mark the run running and queue its chunks once the transaction commits."""
    JudgeRun.objects.filter(pk=run.pk).update(status=JudgeRun.Status.RUNNING, dispatched_at=timezone.now())
    run_id, chunks = run.pk, run.chunk_count
    if queue_chunks:
        transaction.on_commit(lambda: dispatch.judge_chunks(run_id, chunks))


def _start_next(project_id: int) -> None:
    """Dispatch the oldest waiting run of the project, if none is running (after a run ended)."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project_id).first()
        if JudgeRun.objects.filter(project_id=project_id, status=JudgeRun.Status.RUNNING).exists():
            return
        waiting = JudgeRun.objects.filter(project_id=project_id, status=JudgeRun.Status.QUEUED).order_by("id").first()
        if waiting:
            _dispatch(waiting)


def cancel(run: JudgeRun) -> bool:
    """Stop a run: chunks see it within about a second and stop; what was judged stays. Return whether it was active."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=run.project_id).first()
        changed = JudgeRun.objects.filter(pk=run.pk, status__in=ACTIVE).update(
            status=JudgeRun.Status.CANCELLED, finished_at=timezone.now()
        )
    if changed:
        _start_next(run.project_id)
    return bool(changed)


def retry_failed(run: JudgeRun) -> int:
    """Judge again only the samples whose verdict failed; return how many. Waits behind an active run."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=run.project_id).first()
        if JudgeRun.objects.filter(project_id=run.project_id, status__in=ACTIVE).exists():
            raise RunError("Another run of this project is active; retry once it has finished.")
        failed = run.judgements.exclude(error="")
        count = failed.count()
        if not count:
            return 0
        failed.delete()
        JudgeRun.objects.filter(pk=run.pk).update(error="", figures=None, finished_at=None, failed=0)
        run.refresh_from_db()
        _dispatch(run)  # every chunk is queued again; each one skips what the run has judged already
    return count


def judge_chunk(run_id: int, index: int) -> str:
    """Judge one chunk of a run, skipping what it judged already; finish the run when it was the last."""
    run = JudgeRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None or run.status != JudgeRun.Status.RUNNING:
        return "not running"
    with run_repair.chunk_lease(run_id, index) as mine:
        if not mine:
            return "another worker is judging this chunk"  # a copy queued by the watch (judging/run_repair.py)
        JudgeRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=timezone.now())
        judged = set(run.judgements.filter(sample_id__in=run.chunk(index)).values_list("sample_id", flat=True))
        todo = [i for i in run.chunk(index) if i not in judged]
        found = Sample.objects.in_bulk(todo)
        samples = [found[i] for i in todo if i in found]  # a sample deleted since the run began is skipped
        if samples:
            _judge(run, samples)
    return _after_chunk(run_id)


def _judge(run: JudgeRun, samples: list[Sample]) -> None:
    project = run.project
    try:
        provider = get_provider(project)
    except ProviderError as error:
        _finish(run.pk, JudgeRun.Status.FAILED, str(error))
        return
    # One principle load and one choice of principles for the chunk (over the budget: the ones most relevant to
    # its items): every call of the chunk shares one byte-identical, cached prompt prefix.
    principles = budget.principle_set(project)
    memories = judge.working_memories(project, samples, principles)
    # Over the budget the prefix is the chunk's own: its first call goes alone and writes the provider's cache,
    # so the others read it instead of each writing it at once (a cache entry exists once a reply has begun).
    warm_up = principles.tokens > project.principle_budget_tokens
    cancelled = threading.Event()
    version_id = run.memory_version_id
    plan = check_plan(run, provider.remote)

    def ask(memory: WorkingMemory) -> Verdict:
        return _call_provider(provider, memory, project, cancelled)

    def call(sample: Sample, memory: WorkingMemory) -> tuple[Verdict | None, str, int, checks.Checked]:
        started = time.monotonic()
        if cancelled.is_set():
            return None, "", 0, checks.Checked()
        try:
            local = judge.cascaded(project, provider, memory)
            if local is not None:  # the learned judge was sure enough: no model call, so nothing to ask again
                verdict, checked = local, checks.check(checks.Plan(), memory, local, ask, sample.pk)
            else:
                verdict = ask(memory)
                pair = (sample.output_a, sample.output_b) if project.is_pairwise else None
                checked = checks.check(plan, memory, verdict, ask, sample.pk, pair)
        except _Cancelled:
            return None, "", 0, checks.Checked()  # cancelled while backing off: like a call never made
        except ProviderError as error:
            return None, str(error), int((time.monotonic() - started) * 1000), checks.Checked()
        return verdict, "", int((time.monotonic() - started) * 1000), checked

    with ThreadPoolExecutor(
        max_workers=max(1, project.provider_concurrency), thread_name_prefix=f"judge-{run.pk}"
    ) as pool:
        items = list(zip(samples, memories))
        first, waiting = (items[:1], items[1:]) if warm_up else (items, [])
        pending: dict[Future[tuple[Verdict | None, str, int, checks.Checked]], tuple[Sample, WorkingMemory]] = {
            pool.submit(call, sample, memory): (sample, memory) for sample, memory in first
        }
        while pending:
            finished, _ = wait(pending, timeout=CANCEL_POLL_SECONDS, return_when=FIRST_COMPLETED)
            if waiting and len(finished) == len(pending):  # the warm-up call is done: now the rest at once
                pending.update({pool.submit(call, sample, memory): (sample, memory) for sample, memory in waiting})
                waiting = []
            rows = []
            for future in finished:
                sample, memory = pending.pop(future)
                verdict, failure, latency, checked = future.result()
                if verdict is None and not failure:
                    continue  # cancelled before the call: nothing written
                rows.append(
                    Judgement(
                        project=project,
                        sample=sample,
                        run=run,
                        memory_version_id=version_id,
                        provider=provider.name,
                        model=provider.model,
                        latency_ms=latency,
                        signals=checked.signals,
                        checks=checked.checks,
                        **judge.judgement_fields(memory, verdict, failure),
                    )
                )
            if rows:
                # ignore_conflicts: a redelivered chunk racing its first delivery never doubles a verdict.
                Judgement.objects.bulk_create(rows, ignore_conflicts=True)
                JudgeRun.objects.filter(pk=run.pk).update(progress_at=timezone.now())
            if (
                not cancelled.is_set()
                and not JudgeRun.objects.filter(pk=run.pk, status=JudgeRun.Status.RUNNING).exists()
            ):
                cancelled.set()  # cancelled (or failed) meanwhile: calls not yet started return at once


def check_plan(run: JudgeRun, remote: bool) -> checks.Plan:
    """The extra asks of a run's verdicts; the run is the stability draw's salt."""
    return checks.project_plan(run.project, remote, str(run.pk))


def _call_provider(provider: Provider, memory: WorkingMemory, project: Project, cancelled: threading.Event) -> Verdict:
    """One provider call in one of the project's slots; a rate limit or overload waits and tries again."""
    for attempt in range(OVERLOAD_ATTEMPTS):
        with provider_slot(project.pk, project.provider_concurrency):
            try:
                return judge.with_tier(provider.judge(memory))
            except ProviderError as error:
                if not error.overloaded or attempt == OVERLOAD_ATTEMPTS - 1:
                    raise
                wait_seconds = error.retry_after or min(OVERLOAD_BACKOFF_MAX, 2.0**attempt)
        log.info("project %s: provider overloaded, waiting %.1f s", project.pk, wait_seconds)
        if cancelled.wait(wait_seconds):  # the slot is free meanwhile: the run slows down, others go on
            raise _Cancelled
    raise AssertionError("unreachable")


class _Cancelled(Exception):
    """The run was cancelled while a call waited out an overload."""


def _after_chunk(run_id: int) -> str:
    """Recount the run's verdicts (exact whatever got redelivered); finish it when every sample has one."""
    counts = Judgement.objects.filter(run_id=run_id).aggregate(
        done=Count("id", filter=Q(error="")),
        failed=Count("id", filter=~Q(error="")),
        abstained=Count("id", filter=Q(error="", value="")),
    )
    JudgeRun.objects.filter(pk=run_id).update(**counts)
    run = JudgeRun.objects.get(pk=run_id)
    if run.status != JudgeRun.Status.RUNNING:
        return run.status
    if counts["done"] == 0 and counts["failed"] >= min(run.total, FAIL_FAST_AFTER * run.chunk_size):
        last = (
            Judgement.objects.filter(run_id=run_id)
            .exclude(error="")
            .order_by("-id")
            .values_list("error", flat=True)
            .first()
        )
        _finish(run_id, JudgeRun.Status.FAILED, f"stopped: the first {counts['failed']} verdicts all failed: {last}")
        return "failed"
    if counts["done"] + counts["failed"] >= run.total:
        _finish(run_id, JudgeRun.Status.DONE, "")
        return "done"
    return "running"


def _finish(run_id: int, status: str, error: str) -> None:
    """End a running run once, with its totals and agreement written in the same conditional update."""
    run = JudgeRun.objects.select_related("project").get(pk=run_id)
    usage = Usage()
    for row in run.judgements.values_list("usage", flat=True).iterator():
        usage.add(Usage(**{k: v for k, v in (row or {}).items() if k in Usage.__dataclass_fields__}))
    updates = {
        "status": status,
        "finished_at": timezone.now(),
        "usage": usage.as_dict(),
        "figures": stored_agreement(run),
        **confidence.settle(run),
    }
    if error:
        updates["error"] = error[:2000]
    # Of two chunks finishing together, only one changes a running run: the other's update matches no row.
    if JudgeRun.objects.filter(pk=run_id, status=JudgeRun.Status.RUNNING).update(**updates):
        _start_next(run.project_id)
