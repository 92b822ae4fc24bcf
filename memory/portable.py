"""Export and import a judge: criterion, label schema, provider settings, principles (with their flags and
sources) and the episodic examples (inputs, outputs, labels, critiques) as one JSON document.

The document is validated whole (pydantic for its shape, then the project's own rules: the label schema, each
label, each principle's sources) before anything is written, and written in one transaction: a malformed or
foreign document is refused with the reason and creates nothing. Ids never leave the site: a principle names
its sources by their index in `examples`. Export → import → export gives the same document apart from names
(the project's and the authors') and the order-preserving renumbering that ids get anyway.

Authors: an example by the importing user's own username is imported in their name; every other author
becomes an inactive placeholder account `imported-<author>` (it cannot log in), a reviewer of the new project,
so that who taught the judge what stays visible and two experts' labels on one sample both survive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from pydantic import ValidationError as ShapeError

from memory import versions
from memory.models import DistilledFeedback, MemoryVersion, Principle, PrincipleSource
from reviews.import_reading import MAX_JSON_DEPTH, check_storable
from reviews.labels import LabelKind, check_schema, label_choices, normalize_label
from reviews.models import (
    MAX_CRITIQUE_CHARS,
    MAX_TEXT_CHARS,
    SAMPLE_CONTENT_FIELDS,
    Feedback,
    Membership,
    Project,
    Role,
    Sample,
)
from reviews.projects import create_project
from reviews.signals import feedback_imported, samples_imported

FORMAT = "memalign-judge/1"
MAX_ERRORS = 10  # reasons listed when a document is refused


class Refused(Exception):
    """The document cannot be imported; the message says why (every reason found, up to MAX_ERRORS)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LabelSchemaDoc(_Strict):
    kind: Literal["pass_fail", "categorical", "numeric", "pairwise"]
    categories: list[str] = Field(default_factory=list, max_length=10)
    scale_min: StrictInt | None = None
    scale_max: StrictInt | None = None


class ProviderDoc(_Strict):
    provider: Literal["", "offline", "anthropic", "openai_compatible"] = ""
    model: str = Field("", max_length=100)
    base_url: str = Field("", max_length=200)
    retrieval_k: StrictInt = Field(5, ge=0, le=50)
    provider_concurrency: StrictInt = Field(8, ge=1, le=64)
    max_principles: StrictInt = Field(60, ge=5, le=2000)
    principle_budget_tokens: StrictInt = Field(4_000, ge=200, le=200_000)


class ExampleDoc(_Strict):
    external_id: str = Field(min_length=1, max_length=200)
    inputs: dict[str, Any] | str
    outputs: str = Field("", max_length=MAX_TEXT_CHARS)
    output_a: str = Field("", max_length=MAX_TEXT_CHARS)
    output_b: str = Field("", max_length=MAX_TEXT_CHARS)
    expectations: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    judge_value: str = Field("", max_length=64)
    judge_rationale: str = Field("", max_length=MAX_TEXT_CHARS)
    label: str = Field(min_length=1, max_length=64)
    critique: str = Field("", max_length=MAX_CRITIQUE_CHARS)
    author: str = Field(min_length=1, max_length=150)
    distilled: StrictBool = False  # its critique was already distilled into the principles

    def sample_fields(self) -> dict[str, Any]:
        return self.model_dump(include=set(SAMPLE_CONTENT_FIELDS))


class PrincipleDoc(_Strict):
    text: str = Field(min_length=1, max_length=5_000)
    label: str = Field("", max_length=64)
    origin: Literal["distilled", "manual"] = "distilled"
    pinned: StrictBool = False
    retired: StrictBool = False
    retired_reason: str = Field("", max_length=200)
    sources: list[StrictInt] = Field(default_factory=list)  # indexes into `examples`


class JudgeDocument(_Strict):
    format: Literal["memalign-judge/1"]
    name: str = Field("", max_length=120)
    criterion: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    label_schema: LabelSchemaDoc
    provider: ProviderDoc = Field(default_factory=ProviderDoc)
    principles: list[PrincipleDoc] = Field(default_factory=list)
    examples: list[ExampleDoc] = Field(default_factory=list)


# --- export -----------------------------------------------------------------------------------------------------


def export(project: Project) -> dict[str, Any]:
    """Return the project's judge as one JSON-ready document."""
    feedback = list(Feedback.objects.filter(project=project).select_related("sample", "author").order_by("id"))
    distilled = dict(DistilledFeedback.objects.filter(feedback__project=project).values_list("feedback_id", "revision"))
    index = {f.pk: i for i, f in enumerate(feedback)}
    examples = []
    for f in feedback:
        s = f.sample
        examples.append(
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
                "label": f.label,
                "critique": f.critique,
                "author": f.author.username,
                "distilled": distilled.get(f.pk) == f.revision,
            }
        )
    principles = []
    links = PrincipleSource.objects.filter(principle__project=project, feedback__isnull=False)
    sources: dict[int, list[int]] = {}
    for principle_id, feedback_id in links.values_list("principle_id", "feedback_id"):
        sources.setdefault(principle_id, []).append(index[feedback_id])
    for p in Principle.objects.filter(project=project).order_by("id"):
        principles.append(
            {
                "text": p.text,
                "label": p.label,
                "origin": p.origin,
                "pinned": p.pinned,
                "retired": p.retired,
                "retired_reason": p.retired_reason,
                "sources": sorted(sources.get(p.pk, [])),
            }
        )
    return {
        "format": FORMAT,
        "name": project.name,
        "criterion": project.criterion,
        "label_schema": {
            "kind": project.label_kind,
            "categories": list(project.categories or []),
            "scale_min": project.scale_min,
            "scale_max": project.scale_max,
        },
        "provider": {
            "provider": project.provider,
            "model": project.model_name,
            "base_url": project.provider_base_url,
            "retrieval_k": project.retrieval_k,
            "provider_concurrency": project.provider_concurrency,
            "max_principles": project.max_principles,
            "principle_budget_tokens": project.principle_budget_tokens,
        },
        "principles": principles,
        "examples": examples,
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- import -----------------------------------------------------------------------------------------------------


def parse(raw: bytes | str) -> JudgeDocument:
    """Return the validated document, or raise Refused with every reason found (up to MAX_ERRORS)."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise Refused(f"The file is not JSON: {error}.") from None
    except RecursionError:
        raise Refused(f"The file is nested too deeply (a value may nest {MAX_JSON_DEPTH} levels).") from None
    if not isinstance(data, dict):
        raise Refused(f"A judge document is a JSON object; this file holds a JSON {type(data).__name__}.")
    _check_storable(data)
    if "format" not in data:
        raise Refused(f"This is not a MemAlign judge document: it has no 'format' key (expected {FORMAT!r}).")
    if data["format"] != FORMAT:
        raise Refused(f"Format {data['format']!r} is not one this site reads; it reads {FORMAT!r}.")
    try:
        document = JudgeDocument.model_validate(data)
    except ShapeError as error:
        raise Refused(_reasons(location(e["loc"]) + ": " + e["msg"] for e in error.errors())) from None
    _check(document)
    return document


def _check_storable(data: dict[str, Any]) -> None:
    """Refuse, before validation reads it, what the database cannot store or a reader cannot walk: JSON nested
    too deeply, NUL characters, unpaired surrogates, NaN (the import's own rules, per example and principle)."""
    problems: list[str] = []
    for key, value in data.items():
        if key in ("examples", "principles") and isinstance(value, list):
            for n, item in enumerate(value):
                for field, part in item.items() if isinstance(item, dict) else [("", item)]:
                    check_storable(f"{key}[{n}]" + (f".{field}" if field else ""), part, problems)
        else:
            check_storable(str(key), value, problems)
    if problems:
        raise Refused(_reasons(problems))


def location(loc: Sequence[int | str]) -> str:
    """A place in a JSON document as its reader would write it: `examples[3].label`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def invalid(document: str, reasons: Iterable[str]) -> str:
    """One message for a refused document ("the judge document", "the project backup"): up to MAX_ERRORS reasons."""
    listed = [reason.rstrip(".") for reason in reasons]
    shown = "; ".join(listed[:MAX_ERRORS])
    more = f" (and {len(listed) - MAX_ERRORS} more)" if len(listed) > MAX_ERRORS else ""
    return f"{document[0].upper()}{document[1:]} is invalid: {shown}{more}."


def _reasons(reasons: Iterable[str]) -> str:
    return invalid("the judge document", reasons)


def _check(document: JudgeDocument) -> None:
    """Apply the project's rules the shape cannot express; raise Refused listing what breaks them."""
    schema = document.label_schema
    try:
        check_schema(schema.kind, schema.categories, schema.scale_min, schema.scale_max)
    except ValidationError as error:
        raise Refused(_reasons(f"label_schema: {m}" for m in error.messages)) from None
    choices = label_choices(schema.kind, schema.categories, schema.scale_min, schema.scale_max)
    problems = []
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    authors: set[tuple[str, str]] = set()
    for n, example in enumerate(document.examples):
        for field in ("label", "judge_value"):
            value = getattr(example, field)
            if value:
                try:
                    setattr(example, field, normalize_label(value, choices, schema.kind))
                except ValidationError as error:
                    problems.append(f"examples[{n}].{field}: {error.messages[0]}")
        pairwise = schema.kind == LabelKind.PAIRWISE.value
        has_pair = bool(example.output_a and example.output_b)
        if (pairwise and not has_pair) or (not pairwise and (example.output_a or example.output_b)):
            problems.append(
                f"examples[{n}]: a {schema.kind} judge's examples have "
                + ("output_a and output_b" if pairwise else "outputs, not output_a/output_b")
            )
        fields = example.sample_fields()
        first = seen.setdefault(example.external_id, (n, fields))
        if first[1] != fields:
            problems.append(
                f"examples[{n}]: sample {example.external_id!r} differs from the one in examples[{first[0]}]"
            )
        if (example.external_id, example.author) in authors:
            problems.append(f"examples[{n}]: a second example by {example.author!r} on sample {example.external_id!r}")
        authors.add((example.external_id, example.author))
    count = len(document.examples)
    for n, principle in enumerate(document.principles):
        if principle.label and principle.label not in choices:
            problems.append(f"principles[{n}].label: {principle.label!r} is not one of {', '.join(choices)}")
        for source in principle.sources:
            if not 0 <= source < count:
                problems.append(
                    f"principles[{n}].sources: {source} is not an example index"
                    + (f" (0 to {count - 1})" if count else " (there are no examples)")
                )
        if principle.origin == "distilled" and not principle.sources and not principle.retired:
            problems.append(f"principles[{n}]: an active distilled principle needs at least one source")
    if problems:
        raise Refused(_reasons(problems))


def import_judge(raw: bytes | str, owner: User, name: str = "") -> Project:
    """Create a project from a judge document, owned by `owner`; raise Refused (creating nothing) when it is
    malformed or foreign. Episodic entries and sample vectors are made by the workers after commit."""
    document = parse(raw)
    schema, settings_ = document.label_schema, document.provider
    try:
        with transaction.atomic():
            project = create_project(
                owner,
                name=(name or document.name or "Imported judge")[:120],
                criterion=document.criterion,
                label_kind=schema.kind,
                categories=schema.categories,
                scale_min=schema.scale_min,
                scale_max=schema.scale_max,
                provider=settings_.provider,
                model_name=settings_.model,
                provider_base_url=settings_.base_url,
                retrieval_k=settings_.retrieval_k,
                provider_concurrency=settings_.provider_concurrency,
                max_principles=settings_.max_principles,
                principle_budget_tokens=settings_.principle_budget_tokens,
            )
            _write(project, document, owner)
    except ValidationError as error:  # the project's own field checks (a bad base URL, …)
        raise Refused(_reasons(f"{field}: {m}" for field, ms in error.message_dict.items() for m in ms)) from None
    project_id = project.pk
    transaction.on_commit(lambda: samples_imported.send(sender=Project, project_id=project_id))
    transaction.on_commit(lambda: feedback_imported.send(sender=Project, project_id=project_id))
    return project


def _write(project: Project, document: JudgeDocument, owner: User) -> None:
    now = timezone.now()
    authors = {e.author for e in document.examples}
    accounts = {name: owner if name == owner.get_username() else _placeholder(project, name) for name in authors}
    samples: dict[str, Sample] = {}
    for example in document.examples:
        if example.external_id not in samples:
            samples[example.external_id] = Sample(
                project=project, external_id=example.external_id, **example.sample_fields()
            )
    Sample.objects.bulk_create(samples.values())
    feedback = Feedback.objects.bulk_create(
        Feedback(
            project=project,
            sample=samples[e.external_id],
            author=accounts[e.author],
            label=e.label,
            critique=e.critique,
            agrees_with_judge=(e.label == e.judge_value) if e.judge_value else None,
            imported_by=owner,
            imported_at=now,
        )
        for e in document.examples
    )
    version = versions.new_version(
        project,
        MemoryVersion.Trigger.IMPORT,
        actor=owner,
        summary=f"imported from a judge document by {owner.get_username()}: {len(document.principles)} principles, "
        f"{len(document.examples)} examples",
    )
    principles = Principle.objects.bulk_create(
        Principle(
            project=project,
            text=p.text,
            label=p.label,
            origin=p.origin,
            pinned=p.pinned,
            retired=p.retired,
            retired_reason=p.retired_reason,
            created_in=version,
        )
        for p in document.principles
    )
    PrincipleSource.objects.bulk_create(
        PrincipleSource(principle=principle, feedback=feedback[i], feedback_revision=feedback[i].revision)
        for principle, doc in zip(principles, document.principles)
        for i in dict.fromkeys(doc.sources)
    )
    DistilledFeedback.objects.bulk_create(
        DistilledFeedback(feedback=f, revision=f.revision, version=version)
        for f, e in zip(feedback, document.examples)
        if e.distilled
    )
    # The version was numbered before the principles existed: record the snapshot it stands for.
    version.principles = [
        {"id": p.pk, "text": p.text, "label": p.label, "pinned": p.pinned} for p in principles if not p.retired
    ]
    version.save(update_fields=["principles"])


def _placeholder(project: Project, author: str) -> User:
    """An inactive account standing for an author of another site, a reviewer of the new project."""
    users = get_user_model()
    base = f"imported-{slugify(author)[:100] or 'author'}"
    username, n = base, 1
    while users.objects.filter(username=username).exists():
        n += 1
        username = f"{base}-{n}"
    user = users.objects.create_user(username, email="", password=None, is_active=False)
    Membership.objects.create(project=project, user=user, role=Role.REVIEWER)
    return user
