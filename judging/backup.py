"""Back up a whole project as one JSON document, and restore such a document into a new project.

Where the judge document (memory.portable) is the small, portable form of a judge, a backup is everything a
project is: its settings, every sample (reviewed or not), every review with its author, revision and times, the
team's decisions, the members, the principles with their sources and the memory versions they belong to, the
evaluation settings and, optionally, the judge runs with their verdicts. Restoring it gives the same verdicts
and figures: the derived data (episodic entries, sample vectors, the teaching order) is rebuilt by the workers
after commit, and nothing is re-distilled, because which review revisions were distilled is restored too.

Ids never leave the site: rows refer to each other by position (a review's sources by its index in `reviews`, a
sample by its external id, a version by its number). A restore validates the whole document first (its shape,
then the project's own rules) and writes it in one transaction: a refused document creates nothing.

People are named by username (and email). `match_accounts` (the management command, run by the site's admin)
maps each to the account of that username when there is one; otherwise, and always for an upload through the
site (an owner must not be able to put reviews in someone else's name), each becomes an inactive placeholder
account `imported-<username>` that cannot log in. The restoring user owns the new project.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic import ValidationError as ShapeError

from judging.models import Judgement, JudgeRun, JudgingSettings
from memory.models import DistilledFeedback, EvaluationSettings, MemoryVersion, Principle, PrincipleSource
from memory.portable import invalid, location
from reviews.adjudication import DECISIONS_USERNAME, decisions_account
from reviews.labels import normalize_label
from reviews.models import MAX_CRITIQUE_CHARS, MAX_TEXT_CHARS, Decision, Feedback, Membership, Project, Sample
from reviews.projects import create_project
from reviews.signals import feedback_imported, samples_imported

FORMAT = "memalign-project"
VERSION = 1
Json = Any  # a value as JSON holds it

# Every Project field a backup carries: all but ids, the slug and who created it.
PROJECT_FIELDS = [
    f.name for f in Project._meta.concrete_fields if f.name not in {"id", "slug", "created_by", "created_at"}
]


class Refused(Exception):
    """The document cannot be restored; the message says why (every reason found, up to memory.portable.MAX_ERRORS)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Timed(_Strict):
    model_config = ConfigDict(extra="forbid", strict=False)  # times arrive as ISO strings


Username = StrictStr


class PersonDoc(_Strict):
    username: str = Field(min_length=1, max_length=150)
    email: str = Field("", max_length=254)


class MemberDoc(_Timed):
    username: Username
    role: Literal["viewer", "reviewer", "owner"]
    adjudicator: StrictBool = False
    added_at: AwareDatetime


class SampleDoc(_Timed):
    external_id: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Json] | StrictStr
    outputs: str = Field("", max_length=MAX_TEXT_CHARS)
    output_a: str = Field("", max_length=MAX_TEXT_CHARS)
    output_b: str = Field("", max_length=MAX_TEXT_CHARS)
    expectations: Json = None
    metadata: dict[str, Json] = Field(default_factory=dict)
    judge_value: str = Field("", max_length=64)
    judge_rationale: str = Field("", max_length=MAX_TEXT_CHARS)
    created_at: AwareDatetime


class ReviewDoc(_Timed):
    sample: StrictStr  # its external id
    author: Username
    label: str = Field(min_length=1, max_length=64)
    critique: str = Field("", max_length=MAX_CRITIQUE_CHARS)
    revision: StrictInt = Field(1, ge=1)
    agrees_with_judge: StrictBool | None = None
    imported_by: Username | None = None
    imported_at: AwareDatetime | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    verdict_shown: StrictBool | None = None
    excluded_from_memory: StrictBool = False  # left out of the memory by an owner, with when and by whom
    excluded_at: AwareDatetime | None = None
    excluded_by: Username | None = None
    distilled_revision: StrictInt | None = None  # the revision distillation saw, if any
    distilled_in: StrictInt | None = None  # in which memory version


class DecisionDoc(_Timed):
    sample: StrictStr
    label: str = Field(min_length=1, max_length=64)
    reason: StrictStr
    review: StrictInt | None = None  # index in `reviews` of the row carrying it into the memory
    decided_by: Username | None = None
    decided_at: AwareDatetime


class SourceDoc(_Strict):
    review: StrictInt | None  # None: the review it came from was removed since
    revision: StrictInt = Field(ge=1)


class PrincipleDoc(_Timed):
    text: str = Field(min_length=1)
    label: str = Field("", max_length=64)
    origin: Literal["distilled", "manual"]
    pinned: StrictBool = False
    retired: StrictBool = False
    retired_reason: str = Field("", max_length=200)
    created_in: StrictInt | None = None  # a version number
    created_at: AwareDatetime
    updated_at: AwareDatetime
    sources: list[SourceDoc] = Field(default_factory=list)


class VersionDoc(_Timed):
    number: StrictInt = Field(ge=1)
    trigger: Literal[tuple(MemoryVersion.Trigger.values)]  # type: ignore[valid-type]
    actor: Username | None = None
    status: Literal[tuple(MemoryVersion.Status.values)]  # type: ignore[valid-type]
    error: StrictStr = ""
    principles: list[dict[str, Json]]  # the snapshot; "principle" is an index in `principles` (None: deleted)
    summary: str = Field("", max_length=300)
    provider: str = Field("", max_length=20)
    model: str = Field("", max_length=100)
    usage: dict[str, Json] = Field(default_factory=dict)
    duration_ms: StrictInt = Field(0, ge=0)
    created_at: AwareDatetime


class EvaluationSettingsDoc(_Strict):
    group_key: str = Field("", max_length=100)
    gate_enabled: StrictBool = False
    guard_size: StrictInt = Field(30, ge=1, le=1000)
    gate_threshold: StrictFloat | StrictInt = Field(0.05, ge=0, lt=1)
    guard_samples: list[StrictStr] = Field(default_factory=list)  # external ids
    conflict_similarity: StrictFloat | StrictInt = Field(0.9, ge=0, le=1)


class VerdictDoc(_Timed):
    sample: StrictStr
    value: str = Field("", max_length=64)
    rationale: StrictStr = ""
    error: StrictStr = ""
    memory_version: StrictInt | None = None
    principles: list[StrictInt | None] = Field(default_factory=list)  # indexes in `principles`
    retrieved: list[StrictInt | None] = Field(default_factory=list)  # indexes in `reviews`
    similarities: list[StrictFloat | StrictInt] = Field(default_factory=list)
    provider: str = Field("", max_length=20)
    model: str = Field("", max_length=100)
    usage: dict[str, Json] = Field(default_factory=dict)
    latency_ms: StrictInt = Field(0, ge=0)
    tier: str = Field("", max_length=10)
    probability: StrictFloat | StrictInt | None = None
    probabilities: dict[str, StrictFloat | StrictInt] = Field(default_factory=dict)
    signals: dict[str, Json] = Field(default_factory=dict)
    confidence: StrictFloat | StrictInt | None = None
    escalated: StrictBool = False
    checks: dict[str, Json] = Field(default_factory=dict)
    created_at: AwareDatetime


class RunDoc(_Timed):
    scope: Literal[tuple(JudgeRun.Scope.values)]  # type: ignore[valid-type]
    scope_detail: str = Field("", max_length=300)
    status: Literal[tuple(JudgeRun.Status.values)]  # type: ignore[valid-type]
    samples: list[StrictStr]
    chunk_size: StrictInt = Field(32, ge=1)
    total: StrictInt = Field(0, ge=0)
    done: StrictInt = Field(0, ge=0)
    failed: StrictInt = Field(0, ge=0)
    abstained: StrictInt = Field(0, ge=0)
    usage: dict[str, Json] = Field(default_factory=dict)
    memory_version: StrictInt | None = None
    figures: Json = None
    guarantee: Json = None
    corrected_rates: Json = None
    checks: Json = None
    error: StrictStr = ""
    created_by: Username | None = None
    created_at: AwareDatetime
    dispatched_at: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    progress_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    verdicts: list[VerdictDoc] = Field(default_factory=list)


class JudgingSettingsDoc(_Strict):
    target_agreement: StrictFloat | StrictInt = Field(0.9, ge=0.5, le=0.999)
    risk: StrictFloat | StrictInt = Field(0.1, ge=0.001, le=0.5)
    asks: StrictInt = Field(1, ge=1, le=5)
    both_orders: StrictBool = True
    stability_percent: StrictInt = Field(0, ge=0, le=100)


class BackupDocument(_Timed):
    format: Literal["memalign-project"]
    version: Literal[1]
    exported_at: AwareDatetime
    project: dict[str, Json]  # checked field by field by the model's own validation
    created_at: AwareDatetime
    people: list[PersonDoc]
    members: list[MemberDoc]
    samples: list[SampleDoc]
    reviews: list[ReviewDoc]
    decisions: list[DecisionDoc] = Field(default_factory=list)
    versions: list[VersionDoc] = Field(default_factory=list)
    principles: list[PrincipleDoc] = Field(default_factory=list)
    evaluation_settings: EvaluationSettingsDoc | None = None
    judging_settings: JudgingSettingsDoc | None = None
    runs: list[RunDoc] | None = None  # None: exported without runs


# --- export -----------------------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def export(project: Project, with_runs: bool = False) -> dict[str, Json]:
    """Return the whole project as one JSON-ready document (runs and their verdicts only `with_runs`)."""
    people: dict[int, tuple[str, str]] = {}

    def person(user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in people:
            user = get_user_model().objects.get(pk=user_id)
            people[user_id] = (user.get_username(), getattr(user, "email", "") or "")
        return people[user_id][0]

    samples = list(Sample.objects.filter(project=project).order_by("id"))
    external = {s.pk: s.external_id for s in samples}
    reviews = list(Feedback.objects.filter(project=project).order_by("id"))
    review_index = {f.pk: i for i, f in enumerate(reviews)}
    distilled = {d.feedback_id: d for d in DistilledFeedback.objects.filter(feedback__project=project)}
    version_numbers = dict(MemoryVersion.objects.filter(project=project).values_list("pk", "number"))
    principles = list(Principle.objects.filter(project=project).order_by("id"))
    principle_index = {p.pk: i for i, p in enumerate(principles)}
    sources: dict[int, list[dict[str, Json]]] = {}
    for link in PrincipleSource.objects.filter(principle__project=project).order_by("id"):
        sources.setdefault(link.principle_id, []).append(
            {"review": review_index.get(link.feedback_id or -1), "revision": link.feedback_revision}
        )
    document: dict[str, Json] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _time(timezone.now()),
        "project": {name: getattr(project, name) for name in PROJECT_FIELDS},
        "created_at": _time(project.created_at),
        "members": [
            {"username": person(m.user_id), "role": m.role, "adjudicator": m.adjudicator, "added_at": _time(m.added_at)}
            for m in Membership.objects.filter(project=project).order_by("id")
        ],
        "samples": [
            {
                "external_id": s.external_id,
                "inputs": s.inputs,
                "outputs": s.outputs,
                "output_a": s.output_a,
                "output_b": s.output_b,
                "expectations": s.expectations,
                "metadata": s.metadata,
                "judge_value": s.judge_value,
                "judge_rationale": s.judge_rationale,
                "created_at": _time(s.created_at),
            }
            for s in samples
        ],
        "reviews": [
            {
                "sample": external[f.sample_id],
                "author": person(f.author_id),
                "label": f.label,
                "critique": f.critique,
                "revision": f.revision,
                "agrees_with_judge": f.agrees_with_judge,
                "imported_by": person(f.imported_by_id),
                "imported_at": _time(f.imported_at),
                "created_at": _time(f.created_at),
                "updated_at": _time(f.updated_at),
                "verdict_shown": f.verdict_shown,
                "excluded_from_memory": f.excluded_from_memory,
                "excluded_at": _time(f.excluded_at),
                "excluded_by": person(f.excluded_by_id),
                "distilled_revision": distilled[f.pk].revision if f.pk in distilled else None,
                "distilled_in": version_numbers.get(distilled[f.pk].version_id or -1) if f.pk in distilled else None,
            }
            for f in reviews
        ],
        "decisions": [
            {
                "sample": external[d.sample_id],
                "label": d.label,
                "reason": d.reason,
                "review": review_index.get(d.feedback_id or -1),
                "decided_by": person(d.decided_by_id),
                "decided_at": _time(d.decided_at),
            }
            for d in Decision.objects.filter(project=project).order_by("id")
        ],
        "versions": [
            {
                "number": v.number,
                "trigger": v.trigger,
                "actor": person(v.actor_id),
                "status": v.status,
                "error": v.error,
                "principles": [_snapshot_out(entry, principle_index) for entry in v.principles],
                "summary": v.summary,
                "provider": v.provider,
                "model": v.model,
                "usage": v.usage,
                "duration_ms": v.duration_ms,
                "created_at": _time(v.created_at),
            }
            for v in MemoryVersion.objects.filter(project=project).order_by("number")
        ],
        "principles": [
            {
                "text": p.text,
                "label": p.label,
                "origin": p.origin,
                "pinned": p.pinned,
                "retired": p.retired,
                "retired_reason": p.retired_reason,
                "created_in": version_numbers.get(p.created_in_id or -1),
                "created_at": _time(p.created_at),
                "updated_at": _time(p.updated_at),
                "sources": sources.get(p.pk, []),
            }
            for p in principles
        ],
        "evaluation_settings": _evaluation_settings_out(project, external),
        "judging_settings": _judging_settings_out(project),
        "runs": _runs_out(project, external, review_index, principle_index, version_numbers, person)
        if with_runs
        else None,
    }
    document["people"] = [{"username": name, "email": email} for name, email in people.values()]
    return document


def _snapshot_out(entry: dict[str, Json], principle_index: dict[int, int]) -> dict[str, Json]:
    """A version's snapshot entry with its principle id replaced by the principle's index."""
    out = {k: v for k, v in entry.items() if k != "id"}
    out["principle"] = principle_index.get(entry.get("id", -1))
    return out


def _evaluation_settings_out(project: Project, external: dict[int, str]) -> dict[str, Json] | None:
    row = EvaluationSettings.objects.filter(project=project).first()
    if row is None:
        return None
    return {
        "group_key": row.group_key,
        "gate_enabled": row.gate_enabled,
        "guard_size": row.guard_size,
        "gate_threshold": row.gate_threshold,
        "guard_samples": [external[i] for i in row.guard_sample_ids if i in external],
        "conflict_similarity": row.conflict_similarity,
    }


def _judging_settings_out(project: Project) -> dict[str, Json] | None:
    row = JudgingSettings.objects.filter(project=project).first()
    if row is None:
        return None
    return {name: getattr(row, name) for name in JudgingSettingsDoc.model_fields}


def _runs_out(
    project: Project,
    external: dict[int, str],
    review_index: dict[int, int],
    principle_index: dict[int, int],
    version_numbers: dict[int, int],
    person: Any,
) -> list[dict[str, Json]]:
    verdicts: dict[int, list[dict[str, Json]]] = {}
    for j in Judgement.objects.filter(project=project, run__isnull=False).order_by("id"):
        verdicts.setdefault(j.run_id or 0, []).append(
            {
                "sample": external[j.sample_id],
                "value": j.value,
                "rationale": j.rationale,
                "error": j.error,
                "memory_version": version_numbers.get(j.memory_version_id or -1),
                "principles": [principle_index.get(i) for i in j.principle_ids],
                "retrieved": [review_index.get(i) for i in j.retrieved],
                "similarities": j.similarities,
                "provider": j.provider,
                "model": j.model,
                "usage": j.usage,
                "latency_ms": j.latency_ms,
                "tier": j.tier,
                "probability": j.probability,
                "probabilities": j.probabilities,
                "signals": j.signals,
                "confidence": j.confidence,
                "escalated": j.escalated,
                "checks": j.checks,
                "created_at": _time(j.created_at),
            }
        )
    return [
        {
            "scope": r.scope,
            "scope_detail": r.scope_detail,
            "status": r.status,
            "samples": [external[i] for i in r.sample_ids if i in external],
            "chunk_size": r.chunk_size,
            "total": r.total,
            "done": r.done,
            "failed": r.failed,
            "abstained": r.abstained,
            "usage": r.usage,
            "memory_version": version_numbers.get(r.memory_version_id or -1),
            "figures": r.figures,
            "guarantee": r.guarantee,
            "corrected_rates": r.corrected_rates,
            "checks": r.checks,
            "error": r.error,
            "created_by": person(r.created_by_id),
            "created_at": _time(r.created_at),
            "dispatched_at": _time(r.dispatched_at),
            "started_at": _time(r.started_at),
            "progress_at": _time(r.progress_at),
            "finished_at": _time(r.finished_at),
            "verdicts": verdicts.get(r.pk, []),
        }
        for r in JudgeRun.objects.filter(project=project).order_by("id")
    ]


def dumps(document: dict[str, Json]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


# --- validation -------------------------------------------------------------------------------------------------


def parse(raw: bytes | str) -> BackupDocument:
    """Return the validated document, or raise Refused with every reason found (up to memory.portable.MAX_ERRORS)."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise Refused(f"The file is not JSON: {error}.") from None
    if not isinstance(data, dict):
        raise Refused(f"A project backup is a JSON object; this file holds a JSON {type(data).__name__}.")
    nul = _first_nul(data)
    if nul is not None:
        raise Refused(_reasons([f"{nul or 'the document'}: text may not contain NUL characters (\\u0000)"]))
    if data.get("format") != FORMAT:
        found = repr(data["format"]) if "format" in data else "no 'format' key"
        raise Refused(f"This is not a MemAlign project backup: format is {found}, expected {FORMAT!r}.")
    if data.get("version") != VERSION:
        raise Refused(f"Backup version {data.get('version')!r} is not one this site reads; it reads version {VERSION}.")
    try:
        document = BackupDocument.model_validate(data)
    except ShapeError as error:
        raise Refused(_reasons(location(e["loc"]) + ": " + e["msg"] for e in error.errors())) from None
    _check(document)
    return document


def _first_nul(data: Json) -> str | None:
    """The place of the first string (or key) holding a NUL character, which no database column stores; or None."""
    stack: list[tuple[list[int | str], Json]] = [([], data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            return location(loc)
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return location(loc)
                stack.append(([*loc, key], item))
        elif isinstance(value, list):
            stack.extend(([*loc, n], item) for n, item in enumerate(value))
    return None


def _reasons(reasons: Iterable[str]) -> str:
    return invalid("the project backup", reasons)


def _check(document: BackupDocument) -> None:
    """Apply the rules the shape cannot express (settings, labels, references); raise Refused listing breaches."""
    problems: list[str] = []
    unknown = set(document.project) - set(PROJECT_FIELDS)
    problems += [f"project.{name}: not a project setting" for name in sorted(unknown)]
    settings = {name: value for name, value in document.project.items() if name in PROJECT_FIELDS}
    candidate = Project(slug="backup-check", **settings)
    try:
        candidate.full_clean(exclude=["slug", "created_by"])
    except (ValidationError, TypeError, ValueError) as error:
        messages = error.message_dict.items() if isinstance(error, ValidationError) else [("", [str(error)])]
        problems += [f"project.{name}: {m}" for name, ms in messages for m in ms]
        raise Refused(_reasons(problems)) from None
    choices = candidate.label_choices
    kind = candidate.label_kind

    def label(where: str, value: str) -> str:
        try:
            return normalize_label(value, choices, kind)
        except ValidationError as error:
            problems.append(f"{where}: {error.messages[0]}")
            return value

    people = {p.username for p in document.people}
    named = _named(document)
    problems += [f"{where}: {name!r} is not in people" for where, name in named if name not in people]
    externals: set[str] = set()
    for n, s in enumerate(document.samples):
        if s.external_id in externals:
            problems.append(f"samples[{n}].external_id: {s.external_id!r} appears twice")
        externals.add(s.external_id)
        if s.judge_value:
            s.judge_value = label(f"samples[{n}].judge_value", s.judge_value)
    reviewed: set[tuple[str, str]] = set()
    for n, r in enumerate(document.reviews):
        r.label = label(f"reviews[{n}].label", r.label)
        if r.sample not in externals:
            problems.append(f"reviews[{n}].sample: {r.sample!r} is not a sample's external_id")
        if (r.sample, r.author) in reviewed:
            problems.append(f"reviews[{n}]: a second review by {r.author!r} of sample {r.sample!r}")
        reviewed.add((r.sample, r.author))
    count, decided = len(document.reviews), set()
    for n, d in enumerate(document.decisions):
        d.label = label(f"decisions[{n}].label", d.label)
        if d.sample not in externals:
            problems.append(f"decisions[{n}].sample: {d.sample!r} is not a sample's external_id")
        if d.sample in decided:
            problems.append(f"decisions[{n}]: a second decision on sample {d.sample!r}")
        decided.add(d.sample)
        if d.review is not None and not (0 <= d.review < count and document.reviews[d.review].sample == d.sample):
            problems.append(f"decisions[{n}].review: {d.review} is not a review of sample {d.sample!r}")
    numbers = [v.number for v in document.versions]
    if len(set(numbers)) != len(numbers):
        problems.append("versions: a version number appears twice")
    principle_count = len(document.principles)
    for n, v in enumerate(document.versions):
        for m, entry in enumerate(v.principles):
            index = entry.get("principle")
            if index is not None and not (isinstance(index, int) and 0 <= index < principle_count):
                problems.append(f"versions[{n}].principles[{m}].principle: {index!r} is not a principle index")
    for n, p in enumerate(document.principles):
        if p.label:
            p.label = label(f"principles[{n}].label", p.label)
        if p.created_in is not None and p.created_in not in numbers:
            problems.append(f"principles[{n}].created_in: there is no version {p.created_in}")
        for m, source in enumerate(p.sources):
            if source.review is not None and not 0 <= source.review < count:
                problems.append(f"principles[{n}].sources[{m}].review: {source.review} is not a review index")
    for n, r in enumerate(document.reviews):
        if r.distilled_in is not None and r.distilled_in not in numbers:
            problems.append(f"reviews[{n}].distilled_in: there is no version {r.distilled_in}")
    if document.evaluation_settings:
        for ext in document.evaluation_settings.guard_samples:
            if ext not in externals:
                problems.append(f"evaluation_settings.guard_samples: {ext!r} is not a sample's external_id")
    for n, run in enumerate(document.runs or []):
        missing = [ext for ext in run.samples if ext not in externals]
        if missing:
            problems.append(f"runs[{n}].samples: {missing[0]!r} is not a sample's external_id")
        if run.memory_version is not None and run.memory_version not in numbers:
            problems.append(f"runs[{n}].memory_version: there is no version {run.memory_version}")
        for m, verdict in enumerate(run.verdicts):
            where = f"runs[{n}].verdicts[{m}]"
            if verdict.value:
                verdict.value = label(f"{where}.value", verdict.value)
            if verdict.sample not in externals:
                problems.append(f"{where}.sample: {verdict.sample!r} is not a sample's external_id")
            if verdict.memory_version is not None and verdict.memory_version not in numbers:
                problems.append(f"{where}.memory_version: there is no version {verdict.memory_version}")
            if any(i is not None and not 0 <= i < count for i in verdict.retrieved):
                problems.append(f"{where}.retrieved: not every entry is a review index")
            if any(i is not None and not 0 <= i < principle_count for i in verdict.principles):
                problems.append(f"{where}.principles: not every entry is a principle index")
    if problems:
        raise Refused(_reasons(problems))


def _named(document: BackupDocument) -> list[tuple[str, str]]:
    """Every (where, username) the document refers to."""
    named = [(f"members[{n}].username", m.username) for n, m in enumerate(document.members)]
    for n, r in enumerate(document.reviews):
        named.append((f"reviews[{n}].author", r.author))
        named += [
            (f"reviews[{n}].{key}", name)
            for key, name in (("imported_by", r.imported_by), ("excluded_by", r.excluded_by))
            if name
        ]
    named += [(f"decisions[{n}].decided_by", d.decided_by) for n, d in enumerate(document.decisions) if d.decided_by]
    named += [(f"versions[{n}].actor", v.actor) for n, v in enumerate(document.versions) if v.actor]
    named += [(f"runs[{n}].created_by", r.created_by) for n, r in enumerate(document.runs or []) if r.created_by]
    return named


# --- restore ----------------------------------------------------------------------------------------------------


@dataclass
class Restored:
    project: Project
    matched: list[str] = field(default_factory=list)  # usernames mapped to this site's accounts of that name
    placeholders: dict[str, str] = field(default_factory=dict)  # username -> the inactive placeholder made for it

    def accounts_summary(self) -> str:
        parts = []
        if self.matched:
            parts.append("mapped to existing accounts: " + ", ".join(self.matched))
        if self.placeholders:
            parts.append(
                "inactive placeholder accounts created: "
                + ", ".join(f"{name} as {made}" for name, made in self.placeholders.items())
            )
        return "; ".join(parts) or "no other people"


def restore(raw: bytes | str, owner: User, match_accounts: bool = False) -> Restored:
    """Create a new project, owned by `owner`, from a backup; raise Refused (creating nothing) when it is malformed.

    Episodic entries, sample vectors and the teaching order are rebuilt by the workers after commit."""
    document = parse(raw)
    with transaction.atomic():
        project = create_project(owner, **document.project)
        restored = Restored(project)
        _write(restored, document, owner, match_accounts)
    project_id = project.pk
    transaction.on_commit(lambda: samples_imported.send(sender=Project, project_id=project_id))
    transaction.on_commit(lambda: feedback_imported.send(sender=Project, project_id=project_id))
    return restored


def _accounts(restored: Restored, document: BackupDocument, owner: User, match: bool) -> dict[str, User]:
    users = get_user_model()
    emails = {p.username: p.email for p in document.people}
    accounts: dict[str, User] = {}
    for username in emails:
        existing = users.objects.filter(username=username).first()
        if username == owner.get_username():
            accounts[username] = owner
        elif username == DECISIONS_USERNAME:
            accounts[username] = decisions_account()  # type: ignore[no-untyped-call]
        elif match and existing is not None:
            accounts[username] = existing
            restored.matched.append(username)
        else:
            accounts[username] = _placeholder(username)
            restored.placeholders[username] = accounts[username].get_username()
    return accounts


def _placeholder(username: str) -> User:
    """An inactive account standing for a person of the backup who has (or may not use) no account here."""
    users = get_user_model()
    base = f"imported-{slugify(username)[:100] or 'author'}"
    name, n = base, 1
    while users.objects.filter(username=name).exists():
        n += 1
        name = f"{base}-{n}"
    user: User = users.objects.create_user(name, email="", password=None, is_active=False)
    return user


def _set_times(rows: Sequence[models.Model], times: Iterable[dict[str, datetime | None]]) -> None:
    """Put the backup's times back: auto_now fields take the clock on create, bulk_update leaves them as set."""
    names: set[str] = set()
    for row, values in zip(rows, times):
        for name, value in values.items():
            setattr(row, name, value)
            names.add(name)
    if rows and names:
        type(rows[0]).objects.bulk_update(rows, sorted(names), batch_size=500)  # type: ignore[attr-defined]


def _write(restored: Restored, document: BackupDocument, owner: User, match: bool) -> None:
    project = restored.project
    accounts = _accounts(restored, document, owner, match)

    def account(username: str | None) -> User | None:
        return accounts[username] if username else None

    Project.objects.filter(pk=project.pk).update(created_at=document.created_at)
    project.created_at = document.created_at
    members = [m for m in document.members if accounts[m.username] != owner]
    rows = Membership.objects.bulk_create(
        Membership(project=project, user=accounts[m.username], role=m.role, adjudicator=m.adjudicator) for m in members
    )
    _set_times(rows, ({"added_at": m.added_at} for m in members))
    own = [m for m in document.members if accounts[m.username] == owner]
    if own:  # the restoring user owns the copy, with the adjudicator flag and join time they had
        Membership.objects.filter(project=project, user=owner).update(
            adjudicator=own[0].adjudicator, added_at=own[0].added_at
        )

    samples = {
        s.external_id: s
        for s in Sample.objects.bulk_create(
            Sample(project=project, **doc.model_dump(exclude={"created_at"})) for doc in document.samples
        )
    }
    _set_times(list(samples.values()), ({"created_at": doc.created_at} for doc in document.samples))

    versions = {
        v.number: v
        for v in MemoryVersion.objects.bulk_create(
            MemoryVersion(project=project, actor=account(doc.actor), **doc.model_dump(exclude={"actor", "created_at"}))
            for doc in document.versions
        )
    }
    _set_times(list(versions.values()), ({"created_at": doc.created_at} for doc in document.versions))

    reviews = Feedback.objects.bulk_create(
        Feedback(
            project=project,
            sample=samples[doc.sample],
            author=accounts[doc.author],
            label=doc.label,
            critique=doc.critique,
            revision=doc.revision,
            agrees_with_judge=doc.agrees_with_judge,
            imported_by=account(doc.imported_by),
            imported_at=doc.imported_at,
            verdict_shown=doc.verdict_shown,
            excluded_from_memory=doc.excluded_from_memory,
            excluded_at=doc.excluded_at,
            excluded_by=account(doc.excluded_by),
        )
        for doc in document.reviews
    )
    _set_times(reviews, ({"created_at": doc.created_at, "updated_at": doc.updated_at} for doc in document.reviews))
    DistilledFeedback.objects.bulk_create(
        DistilledFeedback(
            feedback=row,
            revision=doc.distilled_revision,
            version=versions.get(doc.distilled_in) if doc.distilled_in else None,
        )
        for row, doc in zip(reviews, document.reviews)
        if doc.distilled_revision is not None
    )
    decisions = Decision.objects.bulk_create(
        Decision(
            project=project,
            sample=samples[doc.sample],
            label=doc.label,
            reason=doc.reason,
            feedback=reviews[doc.review] if doc.review is not None else None,
            decided_by=account(doc.decided_by),
        )
        for doc in document.decisions
    )
    _set_times(decisions, ({"decided_at": doc.decided_at} for doc in document.decisions))

    principles = Principle.objects.bulk_create(
        Principle(
            project=project,
            created_in=versions.get(doc.created_in) if doc.created_in else None,
            **doc.model_dump(include={"text", "label", "origin", "pinned", "retired", "retired_reason"}),
        )
        for doc in document.principles
    )
    _set_times(
        principles, ({"created_at": doc.created_at, "updated_at": doc.updated_at} for doc in document.principles)
    )
    PrincipleSource.objects.bulk_create(
        PrincipleSource(
            principle=row,
            feedback=reviews[source.review] if source.review is not None else None,
            feedback_revision=source.revision,
        )
        for row, doc in zip(principles, document.principles)
        for source in doc.sources
    )
    principle_ids = [p.pk for p in principles]
    for version in versions.values():
        version.principles = [_snapshot_in(entry, principle_ids) for entry in version.principles]
    MemoryVersion.objects.bulk_update(list(versions.values()), ["principles"], batch_size=500)

    sample_ids = {ext: s.pk for ext, s in samples.items()}
    if document.evaluation_settings:
        doc = document.evaluation_settings
        EvaluationSettings.objects.update_or_create(
            project=project,
            defaults={
                **doc.model_dump(exclude={"guard_samples"}),
                "guard_sample_ids": [sample_ids[ext] for ext in doc.guard_samples],
            },
        )
    if document.judging_settings:
        JudgingSettings.objects.create(project=project, **document.judging_settings.model_dump())
    review_ids = [r.pk for r in reviews]
    for run in document.runs or []:
        _write_run(project, run, sample_ids, review_ids, principle_ids, versions, account(run.created_by))


def _snapshot_in(entry: dict[str, Json], principle_ids: list[int]) -> dict[str, Json]:
    out = {k: v for k, v in entry.items() if k != "principle"}
    index = entry.get("principle")
    out["id"] = principle_ids[index] if isinstance(index, int) else None
    return out


def _write_run(
    project: Project,
    doc: RunDoc,
    sample_ids: dict[str, int],
    review_ids: list[int],
    principle_ids: list[int],
    versions: dict[int, MemoryVersion],
    created_by: User | None,
) -> None:
    times = {"created_at", "dispatched_at", "started_at", "progress_at", "finished_at"}
    run = JudgeRun.objects.create(
        project=project,
        created_by=created_by,
        sample_ids=[sample_ids[ext] for ext in doc.samples],
        memory_version=versions.get(doc.memory_version) if doc.memory_version else None,
        **doc.model_dump(exclude={"samples", "memory_version", "created_by", "verdicts"} | times),
    )
    JudgeRun.objects.filter(pk=run.pk).update(**{name: getattr(doc, name) for name in times})
    verdicts = Judgement.objects.bulk_create(
        Judgement(
            project=project,
            run=run,
            sample_id=sample_ids[v.sample],
            memory_version=versions.get(v.memory_version) if v.memory_version else None,
            principle_ids=[principle_ids[i] if i is not None else None for i in v.principles],
            retrieved=[review_ids[i] if i is not None else None for i in v.retrieved],
            **v.model_dump(exclude={"sample", "memory_version", "principles", "retrieved", "created_at"}),
        )
        for v in doc.verdicts
    )
    _set_times(verdicts, ({"created_at": v.created_at} for v in doc.verdicts))
