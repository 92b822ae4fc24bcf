"""Aligned-judge runs: which samples, one run at a time per project, chunks any worker can take, agreement.

A run fixes its samples when it is created and is cut into chunks of `chunk_size`; `tasks.judge_chunk` takes
one chunk by index. Inside a chunk the working memories are built in one batch (one embedding call, one
store query), then the provider calls run in threads, each holding one of the project's provider slots
(`memory.limiter`), so the project's concurrency holds across every worker. A chunk skips the samples the run
already judged, so a redelivered chunk (a worker killed mid-chunk) never doubles a verdict.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from agreement import metrics
from judging import dispatch, judge
from judging.models import Judgement, JudgeRun
from memory import budget
from memory import vectors as sample_vectors
from memory.limiter import provider_slot
from memory.llm import get_provider
from memory.llm.base import ProviderError, Usage, Verdict, WorkingMemory
from reviews import queue
from reviews.adjudication import standing
from reviews.models import Feedback, Project, Sample

log = logging.getLogger(__name__)

CHUNK_SIZE = 32  # at 8 calls in flight and 1-3 s a call, a chunk takes 4-12 s: cancel and progress stay prompt
OVERLOAD_ATTEMPTS = 6  # a 429/529 that outlasted the SDK's retries is tried again this many times, backing off
OVERLOAD_BACKOFF_MAX = 30.0
CANCEL_POLL_SECONDS = 1.0
# A run whose first chunks all failed, with not one verdict, stops: the provider is down, not one sample bad.
FAIL_FAST_AFTER = 3
UNCLAIMED_NOTICE = timedelta(seconds=15)
STALLED_NOTICE = timedelta(minutes=1)
ACTIVE = (JudgeRun.Status.QUEUED, JudgeRun.Status.RUNNING)


class RunError(Exception):
    """A run cannot be created or changed as asked; the message says why."""


# --- what a run judges ---------------------------------------------------------------------------------------


def scope_samples(
    project: Project, scope: str, user=None, queue_query: queue.QueueQuery | None = None
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
    user,
    scope: str,
    queue_query: queue.QueueQuery | None = None,
    limit: int | None = None,
    in_process: bool = False,
    chunk_size: int | None = None,
    sample_ids: list[int] | None = None,
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


# --- judging a chunk -----------------------------------------------------------------------------------------


def judge_chunk(run_id: int, index: int) -> str:
    """Judge one chunk of a run, skipping what it judged already; finish the run when it was the last."""
    run = JudgeRun.objects.select_related("project").filter(pk=run_id).first()
    if run is None or run.status != JudgeRun.Status.RUNNING:
        return "not running"
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

    def call(memory: WorkingMemory) -> tuple[Verdict | None, str, int]:
        started = time.monotonic()
        if cancelled.is_set():
            return None, "", 0
        try:
            verdict = _call_provider(provider, memory, project, cancelled)
        except _Cancelled:
            return None, "", 0  # cancelled while backing off: like a call never made, nothing written
        except ProviderError as error:
            return None, str(error), int((time.monotonic() - started) * 1000)
        return verdict, "", int((time.monotonic() - started) * 1000)

    with ThreadPoolExecutor(
        max_workers=max(1, project.provider_concurrency), thread_name_prefix=f"judge-{run.pk}"
    ) as pool:
        items = list(zip(samples, memories))
        first, waiting = (items[:1], items[1:]) if warm_up else (items, [])
        pending: dict[Future, tuple[Sample, WorkingMemory]] = {
            pool.submit(call, memory): (sample, memory) for sample, memory in first
        }
        while pending:
            finished, _ = wait(pending, timeout=CANCEL_POLL_SECONDS, return_when=FIRST_COMPLETED)
            if waiting and len(finished) == len(pending):  # the warm-up call is done: now the rest at once
                pending.update({pool.submit(call, memory): (sample, memory) for sample, memory in waiting})
                waiting = []
            rows = []
            for future in finished:
                sample, memory = pending.pop(future)
                verdict, failure, latency = future.result()
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


def _call_provider(provider, memory: WorkingMemory, project: Project, cancelled: threading.Event) -> Verdict:
    """One provider call in one of the project's slots; a rate limit or overload waits and tries again."""
    for attempt in range(OVERLOAD_ATTEMPTS):
        with provider_slot(project.pk, project.provider_concurrency):
            try:
                return provider.judge(memory)
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
    }
    if error:
        updates["error"] = error[:2000]
    # Of two chunks finishing together, only one changes a running run: the other's update matches no row.
    if JudgeRun.objects.filter(pk=run_id, status=JudgeRun.Status.RUNNING).update(**updates):
        _start_next(run.project_id)


# --- how good: agreement with the experts --------------------------------------------------------------------


@dataclass
class RunAgreement:
    aligned: metrics.Figures | None
    imported: metrics.Figures | None  # the imported judge, on the same samples (those that have its verdict)
    samples: int  # judged samples with an expert label the experts agree on
    reviewers: int  # distinct experts behind those labels
    corroborated: int  # samples where two or more experts gave the same label
    conflicted: int  # judged samples left out because their experts disagree

    def as_dict(self) -> dict:
        return {
            "aligned": self.aligned.as_dict() if self.aligned else None,
            "imported": self.imported.as_dict() if self.imported else None,
            "samples": self.samples,
            "reviewers": self.reviewers,
            "corroborated": self.corroborated,
            "conflicted": self.conflicted,
        }


@dataclass
class ExpertLabels:
    labels: dict[int, str]  # sample id -> the label every expert on it gave
    reviewers: int
    corroborated: int
    conflicted: int


def expert_labels(project: Project, sample_ids=None) -> ExpertLabels:
    """Return the experts' label per sample, where they agree or a decision settled it (overruled feedback is
    left out, feedback left out of the memory counts); samples with conflicting labels are left out."""
    rows = standing(Feedback.objects.filter(project=project)).order_by()
    if sample_ids is not None:
        rows = rows.filter(sample_id__in=sample_ids)
    by_sample: dict[int, set[str]] = {}
    count: dict[int, int] = {}
    authors: dict[int, set[int]] = {}
    for sample_id, label, author_id, decision in rows.values_list(
        "sample_id", "label", "author_id", "decision__id"
    ).iterator():
        by_sample.setdefault(sample_id, set()).add(label)
        if decision is None:  # a decision's own row is the final label, not one more reviewer
            count[sample_id] = count.get(sample_id, 0) + 1
            authors.setdefault(sample_id, set()).add(author_id)
    labels = {s: next(iter(ls)) for s, ls in by_sample.items() if len(ls) == 1}
    return ExpertLabels(
        labels=labels,
        reviewers=len(set().union(*(authors.get(s, set()) for s in labels))) if labels else 0,
        corroborated=sum(1 for s in labels if count.get(s, 0) > 1),
        conflicted=len(by_sample) - len(labels),
    )


def agreement(run: JudgeRun) -> RunAgreement:
    """Agreement of a run's verdicts, and of the imported judge's on the same samples, with the experts.

    Failed verdicts are left out (they are errors to retry, not answers); abstentions count as misses.
    """
    project = run.project
    verdicts = dict(run.judgements.filter(error="").values_list("sample_id", "value"))
    experts = expert_labels(project, list(verdicts))
    ids = sorted(experts.labels)
    kind, choices = project.label_kind, project.label_choices
    aligned = metrics.agreement([experts.labels[i] for i in ids], [verdicts[i] for i in ids], kind, choices)
    imported_by_sample = dict(
        Sample.objects.filter(pk__in=ids).exclude(judge_value="").values_list("id", "judge_value")
    )
    with_verdict = [i for i in ids if i in imported_by_sample]
    imported = metrics.agreement(
        [experts.labels[i] for i in with_verdict], [imported_by_sample[i] for i in with_verdict], kind, choices
    )
    return RunAgreement(aligned, imported, len(ids), experts.reviewers, experts.corroborated, experts.conflicted)


def _experts_state(project: Project) -> list:
    """What the figures depend on besides the verdicts: how many expert labels, and the latest change to one."""
    state = Feedback.objects.filter(project=project).order_by().aggregate(n=Count("id"), latest=Max("updated_at"))
    return [state["n"], state["latest"].isoformat() if state["latest"] else None]


def stored_agreement(run: JudgeRun) -> dict:
    """The run's agreement as stored on it, with the state of the experts' labels it was computed on."""
    return {**agreement(run).as_dict(), "experts_state": _experts_state(run.project)}


def current_figures(run: JudgeRun) -> dict | None:
    """A finished run's figures, recomputed (and stored again) when the experts' labels changed since."""
    if run.status != JudgeRun.Status.DONE or run.figures is None:
        return run.figures
    if run.figures.get("experts_state") != _experts_state(run.project):
        run.figures = stored_agreement(run)
        JudgeRun.objects.filter(pk=run.pk).update(figures=run.figures)
    return run.figures


def imported_judge_agreement(
    project: Project, within: set[int] | None = None
) -> tuple[metrics.Figures | None, ExpertLabels]:
    """Agreement of the imported judge with the experts over every reviewed sample (the project overview), or
    over the reviewed samples among `within` (the queue's audit slice).

    The bootstrap interval costs up to a second on a large project, so the figures are kept in the cache under
    a signature of what they rest on (the feedback, the samples, the slice) and recomputed only when that changes.
    """
    feedback = Feedback.objects.filter(project=project).order_by().aggregate(n=Count("id"), last=Max("updated_at"))
    samples = Sample.objects.filter(project=project).order_by().aggregate(n=Count("id"), last=Max("id"))
    last_edit = feedback["last"].timestamp() if feedback["last"] else 0
    key = f"imported-agreement:{project.pk}:{feedback['n']}:{last_edit}:{samples['n']}:{samples['last']}"
    if within is not None:
        key += f":within:{len(within)}:{hash(frozenset(within))}"  # ints hash the same in every process
    cached = cache.get(key)
    if cached is None:
        cached = _imported_judge_agreement(project, within)
        cache.set(key, cached, timeout=3600)
    return cached


def _imported_judge_agreement(project: Project, within: set[int] | None) -> tuple[metrics.Figures | None, ExpertLabels]:
    experts = expert_labels(project)
    reviewed = list(experts.labels) if within is None else [i for i in experts.labels if i in within]
    verdicts = dict(
        Sample.objects.filter(project=project)
        .exclude(judge_value="")
        .filter(pk__in=reviewed)
        .values_list("id", "judge_value")
    )
    ids = sorted(verdicts)
    figures = metrics.agreement(
        [experts.labels[i] for i in ids], [verdicts[i] for i in ids], project.label_kind, project.label_choices
    )
    return figures, experts


# --- the run page --------------------------------------------------------------------------------------------

VERDICT_FILTERS = {
    "all": "All verdicts",
    "disagree_experts": "Disagrees with the experts",
    "disagree_imported": "Disagrees with the imported judge",
    "abstained": "Abstained",
    "errors": "Errors",
}
PAGE_SIZE = 50


def verdicts(run: JudgeRun, filter_name: str = "all", search: str = "") -> QuerySet[Judgement]:
    """Return a run's verdicts matching a filter and a search over the sample, in sample order."""
    qs = run.judgements.select_related("sample")
    expert_disagrees = Feedback.objects.filter(sample=OuterRef("sample")).exclude(label=OuterRef("value"))
    match filter_name:
        case "disagree_experts":
            qs = qs.filter(Exists(expert_disagrees)).exclude(value="")
        case "disagree_imported":
            qs = qs.exclude(value="").exclude(sample__judge_value="").exclude(sample__judge_value=F("value"))
        case "abstained":
            qs = qs.filter(value="", error="")
        case "errors":
            qs = qs.exclude(error="")
    if search:
        ids = queue.samples(run.project, None, queue.QueueQuery(filter="all", q=search)).values("id")
        qs = qs.filter(sample_id__in=ids)
    return qs.order_by("sample_id")


@dataclass
class VerdictPage:
    items: list[Judgement]
    next_after: int | None  # the sample id to continue after


def verdict_page(qs: QuerySet[Judgement], after: int | None = None, size: int | None = None) -> VerdictPage:
    """One page by keyset on the sample id (unique within a run): page 200 costs what page 1 costs."""
    size = size or PAGE_SIZE
    if after is not None:
        qs = qs.filter(sample_id__gt=after)
    items = list(qs[: size + 1])
    more = len(items) > size
    items = items[:size]
    expert: dict[int, list[str]] = {}
    for sample_id, label in Feedback.objects.filter(sample_id__in=[j.sample_id for j in items]).values_list(
        "sample_id", "label"
    ):
        expert.setdefault(sample_id, []).append(label)
    for item in items:
        item.expert_labels = sorted(expert.get(item.sample_id, []))  # type: ignore[attr-defined]
    return VerdictPage(items, items[-1].sample_id if more else None)


# --- exports ---------------------------------------------------------------------------------------------------

EXPORT_FIELDS = [
    "sample_id",
    "external_id",
    "aligned",
    "imported",
    "experts",
    "rationale",
    "error",
    "memory_version",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "latency_ms",
    "retrieved",
]


def export_rows(run: JudgeRun):
    """Yield a run's verdicts as flat records, in sample order, 500 per query (for the CSV and JSONL exports)."""
    after = None
    while True:
        page = verdict_page(verdicts(run), after, size=500)
        for j in page.items:
            usage = j.usage or {}
            yield {
                "sample_id": j.sample_id,
                "external_id": j.sample.external_id,
                "aligned": j.value,
                "imported": j.sample.judge_value,
                "experts": j.expert_labels,  # type: ignore[attr-defined]  # set by verdicts_page
                "rationale": j.rationale,
                "error": j.error,
                "memory_version": run.memory_version.number if run.memory_version else None,
                "provider": j.provider,
                "model": j.model,
                "input_tokens": usage.get("input_tokens", 0),
                "output_tokens": usage.get("output_tokens", 0),
                "cache_read_tokens": usage.get("cache_read_tokens", 0),
                "latency_ms": j.latency_ms,
                "retrieved": j.retrieved,
            }
        if page.next_after is None:
            return
        after = page.next_after


def notice(run: JudgeRun, now=None) -> str:
    """A plain sentence when a run sits still: no worker took it, or it stopped making progress."""
    now = now or timezone.now()
    if run.status == JudgeRun.Status.QUEUED:
        return "Waiting for the project's current run to finish; it starts by itself after that."
    if run.status != JudgeRun.Status.RUNNING:
        return ""
    if run.started_at is None and run.dispatched_at and now - run.dispatched_at > UNCLAIMED_NOTICE:
        return (
            f"No worker has picked this run up for {int((now - run.dispatched_at).total_seconds())} s. Check that a "
            "Celery worker is running (`make run` starts one; at scale: `celery -A memalign_site worker`)."
        )
    last = run.progress_at or run.started_at
    if last and now - last > STALLED_NOTICE:
        return (
            f"No verdict for {int((now - last).total_seconds())} s. The provider may be slow or rate-limiting, or "
            "the worker stopped; a stopped worker's chunk is taken up again by another worker. You can cancel "
            "the run and keep what it judged."
        )
    return ""


def explanation(judgement: Judgement) -> dict:
    """Everything a verdict used, for its explanation: principles with sources, examples with their samples."""
    from memory.models import Principle, PrincipleSource

    principles = {p.pk: p for p in Principle.objects.filter(project=judgement.project, pk__in=judgement.principle_ids)}
    sources: dict[int, list] = {}
    for link in PrincipleSource.objects.filter(principle_id__in=principles, feedback__isnull=False).select_related(
        "feedback__sample"
    ):
        sources.setdefault(link.principle_id, []).append(link.feedback)
    feedback = Feedback.objects.select_related("sample", "author").in_bulk(judgement.retrieved)
    similarities = judgement.similarities or [None] * len(judgement.retrieved)
    own = sample_vectors.sample_fingerprint(judgement.sample)
    examples = [
        {
            "feedback_id": fid,
            "feedback": feedback.get(fid),
            "similarity": similarity,
            "same_item": fid in feedback and sample_vectors.sample_fingerprint(feedback[fid].sample) == own,
        }
        for fid, similarity in zip(judgement.retrieved, similarities)
    ]
    return {
        "judgement": judgement,
        "principles": [(principles.get(pid), pid, sources.get(pid, [])) for pid in judgement.principle_ids],
        "examples": examples,
        "usage": judgement.usage or {},
    }


def latest_verdict(sample: Sample) -> Judgement | None:
    return Judgement.objects.filter(sample=sample).select_related("run", "memory_version").order_by("-id").first()
