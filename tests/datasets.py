"""Load a file of ../shared/datasets into a project with expert feedback, for tests and benchmarks.

Only FeedbackQA carries a human rationale. For the others the critique is written from what the record holds,
in the plain words a reviewer would use: HaluEval's annotated hallucination span, and for the pairwise files one
sentence naming the better output. Those pairwise critiques are near-identical whichever output won, which is
exactly what must never make a principle cite sources that chose the other label.
"""

from __future__ import annotations

import json
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FILES = ("feedbackqa", "halueval_general", "llmbar", "mtbench_human")


def records(name: str, limit: int | None = None) -> list[dict]:
    with open(DATASETS / f"{name}.jsonl", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return rows[:limit] if limit else rows


def critique(record: dict) -> str:
    if (record.get("rationale") or "").strip():
        return record["rationale"].strip()
    if record["label_type"] == "pairwise":
        return f"Output {record['label']} follows the instruction more closely and is the better response."
    spans = record["meta"].get("hallucination_spans") or []
    if record["label"] == "yes" and spans:
        return f"The response contains a hallucination: {' '.join(spans)[:300]}"
    if record["label"] == "yes":
        return "The response contains statements that are not factual or cannot be verified."
    return "The response is factual and relevant to the query, with nothing made up."


def load_project(name: str, owner, reviewer, limit: int | None = None, provider: str = "offline", **project_fields):
    """Create a project for the file, its samples and one feedback per record by `reviewer`, without signals.

    Returns (project, records). Feedback is bulk-created: no memory task is dispatched, so callers drive the
    memory themselves (semantic.regenerate, episodic.upsert).
    """
    from reviews.models import Feedback, Membership, Role, Sample
    from reviews.projects import create_project

    rows = records(name, limit)
    first = rows[0]
    kind = {"binary": "categorical", "categorical": "categorical", "pairwise": "pairwise"}[first["label_type"]]
    categories = first["meta"]["label_space"] if kind == "categorical" else []
    project = create_project(
        owner, name=f"{name} {limit or 'all'}", criterion=first["criterion"], label_kind=kind, categories=categories
    )
    project.provider = provider
    for field, value in project_fields.items():
        setattr(project, field, value)
    project.save()
    Membership.objects.get_or_create(project=project, user=reviewer, defaults={"role": Role.REVIEWER})
    samples = Sample.objects.bulk_create(
        Sample(
            project=project,
            external_id=r["id"],
            inputs=r["inputs"],
            outputs=r.get("outputs") or "",
            output_a=r.get("output_a") or "",
            output_b=r.get("output_b") or "",
        )
        for r in rows
    )
    Feedback.objects.bulk_create(
        Feedback(project=project, sample=s, author=reviewer, label=r["label"], critique=critique(r))
        for s, r in zip(samples, rows)
    )
    return project, rows
