"""A run's verdicts as the run page, the API and the exports list them: filters, keyset pages, export rows, the
notice when a run sits still, and what a verdict used (its explanation).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from judging import tiers
from judging.models import Judgement, JudgeRun
from memory import blind
from memory import vectors as sample_vectors
from reviews import queue
from reviews.adjudication import team_feedback
from reviews.models import Decision, Feedback, Membership, Project, Sample
from reviews.permissions import is_blind, visible_feedback

# A running run says why it sits still: no worker took it after UNCLAIMED_NOTICE, or no verdict for STALLED_NOTICE.
UNCLAIMED_NOTICE = timedelta(seconds=15)
STALLED_NOTICE = timedelta(minutes=1)

VERDICT_FILTERS = {
    "all": "All verdicts",
    "disagree_experts": "Disagrees with the experts",
    "disagree_imported": "Disagrees with the imported judge",
    "abstained": "Abstained",
    "errors": "Errors",
    "escalated": "Escalated (needs an expert)",
}
PAGE_SIZE = 50


def verdicts(run: JudgeRun, membership: Membership, filter_name: str = "all", search: str = "") -> QuerySet[Judgement]:
    """Return a run's verdicts matching a filter and a search over the sample, in sample order. The experts'
    labels the filters read are those `membership` may see (blind review)."""
    qs = run.judgements.select_related("sample")
    expert_disagrees = visible_feedback(membership, Feedback.objects.filter(sample=OuterRef("sample"))).exclude(
        label=OuterRef("value")
    )
    if is_blind(membership) and filter_name in ("disagree_imported", "abstained", "escalated"):
        # Filters on what a verdict says: over the samples whose verdicts the reviewer may see (withhold).
        qs = qs.filter(Exists(Feedback.objects.filter(sample=OuterRef("sample"), author_id=membership.user_id)))
    match filter_name:
        case "disagree_experts":
            qs = qs.filter(Exists(expert_disagrees)).exclude(value="")
        case "disagree_imported":
            qs = qs.exclude(value="").exclude(sample__judge_value="").exclude(sample__judge_value=F("value"))
        case "abstained":
            qs = qs.filter(value="", error="")
        case "errors":
            qs = qs.exclude(error="")
        case "escalated":
            qs = qs.filter(escalated=True)
    if search:
        ids = queue.samples(run.project, None, queue.QueueQuery(filter="all", q=search)).values("id")
        qs = qs.filter(sample_id__in=ids)
    return qs.order_by("sample_id")


@dataclass
class VerdictPage:
    items: list[Judgement]
    next_after: int | None  # the sample id to continue after


def verdict_page(
    qs: QuerySet[Judgement], membership: Membership, after: int | None = None, size: int | None = None
) -> VerdictPage:
    """One page by keyset on the sample id (unique within a run): page 200 costs what page 1 costs. Each verdict
    carries the experts' labels `membership` may see (a blind reviewer: on samples they reviewed)."""
    size = size or PAGE_SIZE
    if after is not None:
        qs = qs.filter(sample_id__gt=after)
    items = list(qs[: size + 1])
    more = len(items) > size
    items = items[:size]
    expert: dict[int, list[str]] = {}
    shown = visible_feedback(membership, Feedback.objects.filter(sample_id__in=[j.sample_id for j in items]))
    for sample_id, label in shown.values_list("sample_id", "label"):
        expert.setdefault(sample_id, []).append(label)
    withheld = withheld_samples(membership, [j.sample_id for j in items])
    judge_blind = bool(withheld) and Project.objects.filter(pk=items[0].project_id, judge_blind=True).exists()
    for item in items:
        item.expert_labels = sorted(expert.get(item.sample_id, []))  # type: ignore[attr-defined]
        item.withheld = item.sample_id in withheld  # type: ignore[attr-defined]
        if item.withheld:  # type: ignore[attr-defined]
            withhold(item, judge_blind)
    return VerdictPage(items, items[-1].sample_id if more else None)


def withheld_samples(membership: Membership, sample_ids: list[int]) -> set[int]:
    """The samples whose aligned verdicts a blind reviewer may not see yet: those they have not reviewed. The
    aligned judge learned from the other experts' labels, on these samples too (an identical reviewed item
    decides by its label), so its verdict would show them before the reviewer's own."""
    if not is_blind(membership) or not sample_ids:
        return set()
    reviewed = Feedback.objects.filter(author_id=membership.user_id, sample_id__in=sample_ids)
    return set(sample_ids) - set(reviewed.values_list("sample_id", flat=True))


def withhold(judgement: Judgement, judge_blind: bool) -> None:
    """Blank what a withheld verdict says, in this read's objects only (they are never saved): the page, the
    exports and the API then all show the same nothing. The imported judge's verdict goes too where the project
    hides it until a label is chosen (`judge_blind`: the judge-blind first pass)."""
    judgement.value, judgement.rationale, judgement.tier = "", "", ""
    judgement.confidence, judgement.probability = None, None
    judgement.escalated = False
    judgement.probabilities, judgement.checks = {}, {}
    judgement.principle_ids, judgement.retrieved, judgement.similarities = [], [], []
    if judge_blind:
        judgement.sample.judge_value, judgement.sample.judge_rationale = "", ""


# The CSV's columns, then one "expert:<name>" column per reviewer; the JSONL has `experts` as {name: label}.
EXPORT_FIELDS = [
    "sample_id",
    "external_id",
    "aligned",
    "confidence",
    "escalated",
    "position_consistent",
    "stability",
    "imported",
    "final_label",
    "rationale",
    "error",
    "memory_version",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "latency_ms",
    "retrieved_samples",
    "withheld",
]


def export_rows(run: JudgeRun, membership: Membership) -> Iterator[dict[str, Any]]:
    """Yield a run's verdicts as flat records, in sample order, 500 per query (for the CSV and JSONL exports):
    with the experts' labels by reviewer, the final label (a decision's, or the one label the reviewers agree
    on), and the retrieved examples as their samples' external ids. A blind reviewer gets labels, final ones
    included, only on samples they reviewed. A record has the keys of EXPORT_FIELDS, and `experts`
    ({reviewer: label})."""
    after = None
    while True:
        page = verdict_page(verdicts(run, membership), membership, after, size=500)
        ids = [j.sample_id for j in page.items]
        experts: dict[int, dict[str, str]] = {}
        shown = visible_feedback(membership, team_feedback(Feedback.objects.filter(sample_id__in=ids)))
        for sample_id, name, label in shown.values_list("sample_id", "author__username", "label"):
            experts.setdefault(sample_id, {})[name] = label
        decided = dict(Decision.objects.filter(sample_id__in=ids).values_list("sample_id", "label"))
        retrieved_ids = {f for j in page.items for f in j.retrieved or []}
        examples = dict(Feedback.objects.filter(pk__in=retrieved_ids).values_list("pk", "sample__external_id"))
        for j in page.items:
            usage = j.usage or {}
            labels = experts.get(j.sample_id, {})
            agreed = set(labels.values())
            yield {
                "sample_id": j.sample_id,
                "external_id": j.sample.external_id,
                "aligned": j.value,
                "confidence": j.confidence,
                "escalated": j.escalated,
                "position_consistent": j.position_consistent,
                "stability": (j.checks or {}).get("stability", ""),
                "imported": j.sample.judge_value,
                "final_label": (decided.get(j.sample_id) or (agreed.pop() if len(agreed) == 1 else ""))
                if labels
                else "",
                "experts": dict(sorted(labels.items())),
                "rationale": j.rationale,
                "error": j.error,
                "memory_version": run.memory_version.number if run.memory_version else None,
                "provider": j.provider,
                "model": j.model,
                "input_tokens": usage.get("input_tokens", 0),
                "output_tokens": usage.get("output_tokens", 0),
                "cache_read_tokens": usage.get("cache_read_tokens", 0),
                "latency_ms": j.latency_ms,
                # An example unaligned since the run has no sample any more: it keeps its place, blank.
                "retrieved_samples": [examples.get(f, "") for f in j.retrieved or []],
                "withheld": j.withheld,  # type: ignore[attr-defined]  # set by verdict_page
            }
        if page.next_after is None:
            return
        after = page.next_after


def notice(run: JudgeRun, now: datetime | None = None) -> str:
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


def explanation(judgement: Judgement, membership: Membership) -> dict[str, Any]:
    """Everything a verdict used, for its explanation: principles with sources, examples with their samples.

    For a blind reviewer, examples on samples they have not reviewed and principles citing such feedback are
    withheld (counted, not shown), as on every other surface.
    """
    from memory.models import Principle, PrincipleSource

    withheld = blind.withheld_principle_ids(membership, judgement.project)
    principles = {
        p.pk: p
        for p in Principle.objects.filter(project=judgement.project, pk__in=judgement.principle_ids).exclude(
            pk__in=withheld
        )
    }
    sources: dict[int, list[Feedback]] = {}
    for link in PrincipleSource.objects.filter(principle_id__in=principles, feedback__isnull=False).select_related(
        "feedback__sample"
    ):
        if link.feedback is not None:  # always (feedback__isnull=False): narrows the nullable link for mypy
            sources.setdefault(link.principle_id, []).append(link.feedback)
    retrieved = Feedback.objects.filter(pk__in=judgement.retrieved)
    feedback = visible_feedback(membership, retrieved).select_related("sample", "author").in_bulk()
    hidden = set(retrieved.values_list("pk", flat=True)) - set(feedback)
    similarities = judgement.similarities or [None] * len(judgement.retrieved)
    own = sample_vectors.sample_fingerprint(judgement.sample)
    examples = [
        {
            "feedback_id": fid,
            "feedback": feedback.get(fid),
            "withheld": fid in hidden,
            "similarity": similarity,
            "same_item": fid in feedback and sample_vectors.sample_fingerprint(feedback[fid].sample) == own,
        }
        for fid, similarity in zip(judgement.retrieved, similarities)
    ]
    return {
        "judgement": judgement,
        "tier": tiers.TIER_NAMES.get(judgement.tier, ""),
        "decided_by": tiers.decided_by(judgement.provider, judgement.model, judgement.tier),
        "probabilities": sorted((judgement.probabilities or {}).items(), key=lambda kv: -kv[1]),
        "principles": [
            (principles.get(pid), pid, sources.get(pid, []), pid in withheld) for pid in judgement.principle_ids
        ],
        "examples": examples,
        "usage": judgement.usage or {},
    }


def latest_verdict(sample: Sample) -> Judgement | None:
    return Judgement.objects.filter(sample=sample).select_related("run", "memory_version").order_by("-id").first()
