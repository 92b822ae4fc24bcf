"""The dataset export: every sample with its inputs, outputs, the imported judge's verdict, every review and the
final label with how it was reached, as JSONL (one sample a line) or CSV (one column group per reviewer).

What a blind reviewer may not see on the review page they do not get here either: on samples they have not
reviewed themselves, no reviews and no final label.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Prefetch

from reviews import spreadsheets
from reviews.adjudication import team_feedback
from reviews.feedback import saved_quote
from reviews.models import SAMPLE_CONTENT_FIELDS, Decision, Feedback, Membership, Project, Sample
from reviews.permissions import is_blind

CHUNK = 500  # samples read (with their reviews) per query


class Reached:
    """How a sample's final label was reached."""

    DECISION = "decision"  # the reviewers disagreed and an owner or adjudicator decided
    AGREEMENT = "agreement"  # two or more reviewers gave the same label
    SINGLE_REVIEW = "single review"
    CONFLICT = "conflict"  # the reviewers disagree and nobody decided yet: no final label
    UNREVIEWED = "unreviewed"
    HIDDEN = "hidden until you review it"  # a blind reviewer's export, on a sample they did not review


SAMPLE_FIELDS = ("external_id", *SAMPLE_CONTENT_FIELDS)
FINAL_FIELDS = ("final_label", "reached_by", "decided_by", "decision_reason")


def _decision(sample: Sample) -> Decision | None:
    try:
        return sample.decision
    except Decision.DoesNotExist:
        return None


def _final(reviews: list[dict[str, Any]], decision: Decision | None) -> dict[str, Any]:
    if decision is not None:
        return {
            "final_label": decision.label,
            "reached_by": Reached.DECISION,
            "decided_by": decision.decided_by.username if decision.decided_by else "",
            "decision_reason": decision.reason,
        }
    labels = {r["label"] for r in reviews}
    final, reached = "", Reached.UNREVIEWED
    if len(labels) > 1:
        reached = Reached.CONFLICT
    elif labels:
        final, reached = next(iter(labels)), Reached.AGREEMENT if len(reviews) > 1 else Reached.SINGLE_REVIEW
    return {"final_label": final, "reached_by": reached, "decided_by": "", "decision_reason": ""}


def rows(project: Project, membership: Membership) -> Iterator[dict[str, Any]]:
    """Yield one dict per sample, in import order, with its reviews (reviewers' own, not decisions' rows)."""
    reviews = team_feedback(Feedback.objects.filter(project=project)).select_related("author").order_by("created_at")
    samples = (
        Sample.objects.visible(project)
        .select_related("decision__decided_by")
        .prefetch_related(Prefetch("feedback", queryset=reviews, to_attr="reviews"))
        .order_by("id")
    )
    blind = is_blind(membership)
    for sample in samples.iterator(chunk_size=CHUNK):
        row: dict[str, Any] = {field: getattr(sample, field) for field in SAMPLE_FIELDS}
        if blind and not any(f.author_id == membership.user_id for f in sample.reviews):
            row["reviews"] = []
            row.update(final_label="", reached_by=Reached.HIDDEN, decided_by="", decision_reason="")
            yield row
            continue
        decision = _decision(sample)
        row["reviews"] = [
            {
                "reviewer": f.author.username,
                "label": f.label,
                "critique": f.critique,
                "quote": saved_quote(f),
                "reviewed_at": f.updated_at.isoformat(),
                "overruled": decision is not None and f.label != decision.label,
            }
            for f in sample.reviews
        ]
        row.update(_final(row["reviews"], decision))
        yield row


def reviewers(project: Project) -> list[str]:
    """Every reviewer of the project, by name: the CSV has a column group for each."""
    names = team_feedback(Feedback.objects.filter(project=project)).values_list("author__username", flat=True)
    return sorted(set(names))


def csv_header(names: Iterable[str]) -> list[str]:
    per_reviewer = [f"{what}:{name}" for name in names for what in ("label", "critique", "quote", "reviewed_at")]
    return [*SAMPLE_FIELDS, *FINAL_FIELDS, *per_reviewer]


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def csv_row(row: dict[str, Any], names: Iterable[str]) -> list[Any]:
    by_reviewer = {r["reviewer"]: r for r in row["reviews"]}
    cells = [_cell(row[field]) for field in (*SAMPLE_FIELDS, *FINAL_FIELDS)]
    for name in names:
        review = by_reviewer.get(name, {})
        quoted = review.get("quote") or {}
        cells += [
            review.get("label", ""),
            review.get("critique", ""),
            quoted.get("text", ""),
            review.get("reviewed_at", ""),
        ]
    return cells


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(project: Project, membership: Membership) -> Iterator[str]:
    """The export as CSV text, line by line (for a streaming response)."""
    names = reviewers(project)
    writer = spreadsheets.writer(_Echo())  # critiques are untrusted: no cell may read as a formula
    yield writer.writerow(csv_header(names))
    for row in rows(project, membership):
        yield writer.writerow(csv_row(row, names))


def jsonl_lines(project: Project, membership: Membership) -> Iterator[str]:
    """The export as JSONL text, one sample a line."""
    for row in rows(project, membership):
        yield json.dumps(row, ensure_ascii=False, default=str) + "\n"
