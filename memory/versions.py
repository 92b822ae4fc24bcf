"""Versions of the semantic memory: every change to a project's principles is recorded as its next numbered
version (new_version), a failed run as a version that changes nothing (record_failure); the edits by hand (add a
principle, retire or restore one, discard the versions the regression gate held); and what distillation and
consolidation share: the provider's view of a feedback (example, schema), the active principles, the project lock.
"""

from __future__ import annotations

import re
import time
from typing import NotRequired, TypedDict

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from memory import shortening
from memory.llm.base import Example, LabelSchema, Provider, Usage
from memory.locks import memory_writer
from memory.models import Contradiction, MemoryVersion, Principle
from reviews.models import Feedback, Project

# An example's input, outputs and critiques together; a longer example is shortened part by part
# (memory.shortening), so no part is lost.
EXAMPLE_CHARS = 6_000


class PrincipleSnapshot(TypedDict):
    """An active principle as a version records it (MemoryVersion.principles); older versions lack label and pin."""

    id: int
    text: str
    label: NotRequired[str]
    pinned: NotRequired[bool]


def schema(project: Project) -> LabelSchema:
    return LabelSchema(kind=project.label_kind, choices=project.label_choices)


def example(feedback: Feedback, similarity: float = 0.0, other_critiques: list[str] | None = None) -> Example:
    """Return the provider's view of a feedback: the sample, the expert's label and critique, and the other
    reviews' critiques, shortened together to EXAMPLE_CHARS (each part keeps its share, both outputs of a pair)."""
    sample = feedback.sample
    pairwise = bool(sample.output_a or sample.output_b)  # as Sample.output_text tells them apart
    outputs = [sample.output_a, sample.output_b] if pairwise else [sample.outputs]
    others = other_critiques or []
    inputs, *rest = shortening.shorten_parts(
        [sample.inputs_text(), *outputs, feedback.critique, *others], EXAMPLE_CHARS
    )
    shown, critique, others = rest[: len(outputs)], rest[len(outputs)], rest[len(outputs) + 1 :]
    return Example(
        feedback_id=feedback.pk,
        inputs=inputs,
        output=f"Output A:\n{shown[0]}\n\nOutput B:\n{shown[1]}" if pairwise else shown[0],
        label=feedback.label,
        critique=critique,
        judge_value=sample.judge_value,
        similarity=similarity,
        other_critiques=others,
    )


def active_principles(project: Project) -> QuerySet[Principle]:
    return Principle.objects.filter(project=project, retired=False).order_by("id")


def clean_text(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def lock_project(project: Project) -> None:
    # Serialises version numbering per project even if two runs ever overlap (the Redis lock normally prevents it).
    # no_key: a reviewer inserting feedback (which takes a key-share lock on the project) is never blocked.
    Project.objects.select_for_update(no_key=True).filter(pk=project.pk).first()


def new_version(
    project: Project,
    trigger: str,
    *,
    actor: User | None = None,
    summary: str = "",
    provider: Provider | _Manual | None = None,
    usage: Usage | None = None,
    started: float | None = None,
) -> MemoryVersion:
    """Record the project's active principles as its next memory version and return it.

    Call it inside the transaction that made the changes, while holding the project's writer lock
    (memory.locks.memory_writer, or `memory.principles.changing`, which takes both): version numbers never
    interleave and the version holds exactly those changes. `trigger` is a MemoryVersion.Trigger value (edit
    by hand is MANUAL; UNALIGN, ROLLBACK, IMPORT…); `actor` is the user who made the change (None for a
    worker); `provider` is the one whose calls made it (None for a person), `usage` its token counts, `started`
    a time.monotonic() value for the duration. The principles' audit-log entries written since the last version
    are stamped with this version (memory.audit).
    """
    from memory import audit

    lock_project(project)
    number = (MemoryVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    made_by = provider or _Manual()
    version = MemoryVersion.objects.create(
        project=project,
        number=number,
        trigger=trigger,
        actor=actor,
        principles=[
            {"id": p.pk, "text": p.text, "label": p.label, "pinned": p.pinned} for p in active_principles(project)
        ],
        summary=summary[:300],
        provider=made_by.name,
        model=made_by.model,
        usage=(usage or Usage()).as_dict(),
        duration_ms=int((time.monotonic() - started) * 1000) if started is not None else 0,
    )
    audit.record_version(project, version)
    return version


def _new_version(
    project: Project,
    trigger: str,
    provider: Provider | _Manual,
    usage: Usage,
    started: float,
    summary: str,
    actor: User | None = None,
) -> MemoryVersion:
    return new_version(project, trigger, actor=actor, summary=summary, provider=provider, usage=usage, started=started)


def record_failure(
    project: Project, trigger: str, provider: Provider, error: Exception, started: float
) -> MemoryVersion:
    """Record a failed run as a version that changes nothing, with the error, so the dashboard shows it."""
    with transaction.atomic():
        lock_project(project)
        version = _new_version(project, trigger, provider, Usage(), started, f"failed: {error}"[:300])
        version.status = MemoryVersion.Status.FAILED
        version.error = str(error)
        version.save(update_fields=["status", "error"])
        return version


EDIT_WAIT_SECONDS = 10  # an edit from the dashboard waits this long for a running regeneration, then says so


def add_manual_principle(
    project: Project, text: str, author_name: str, actor: User | None = None, label: str = "", pinned: bool = True
) -> Principle:
    """Add a hand-written principle (kept through unalign and consolidation) and record a version."""
    from memory.audit import acting_as

    with memory_writer(project.pk, wait=EDIT_WAIT_SECONDS), transaction.atomic(), acting_as(actor):
        lock_project(project)
        principle = Principle.objects.create(
            project=project, text=text.strip(), label=label, origin=Principle.Origin.MANUAL, pinned=pinned
        )
        version = _new_version(
            project,
            MemoryVersion.Trigger.MANUAL,
            _Manual(),
            Usage(),
            time.monotonic(),
            f"principle {principle.pk} added by {author_name}",
            actor=actor,
        )
        principle.created_in = version
        principle.save(update_fields=["created_in"])
        return principle


def set_retired(
    project: Project, principle: Principle, retired: bool, author_name: str, actor: User | None = None
) -> MemoryVersion:
    """Retire or restore a principle by hand, and record a version."""
    from memory.audit import acting_as

    with memory_writer(project.pk, wait=EDIT_WAIT_SECONDS), transaction.atomic(), acting_as(actor):
        lock_project(project)
        principle.retired = retired
        principle.retired_reason = f"retired by {author_name}" if retired else ""
        principle.save(update_fields=["retired", "retired_reason", "updated_at"])
        verb = "retired" if retired else "restored"
        Contradiction.objects.filter(Q(first=principle) | Q(second=principle), resolved=False).filter(
            Q(first__retired=True) | Q(second__retired=True)
        ).update(resolved=True)
        return _new_version(
            project,
            MemoryVersion.Trigger.MANUAL,
            _Manual(),
            Usage(),
            time.monotonic(),
            f"principle {principle.pk} {verb} by {author_name}",
            actor=actor,
        )


class _Manual:
    name = "human"
    model = ""


def discard_held(project: Project, author_name: str) -> MemoryVersion | None:
    """Discard the versions the regression gate held: the principles go back to the active version's (those
    added since are retired, those retired or rewritten since restored) and a version records it. None when
    nothing is held. The critiques distilled into the discarded versions stay marked as distilled."""
    with memory_writer(project.pk, wait=EDIT_WAIT_SECONDS), transaction.atomic():
        lock_project(project)
        held = list(MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.HELD).order_by("number"))
        if not held:
            return None
        good = (
            MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.OK, number__lt=held[0].number)
            .order_by("-number")
            .first()
        )
        texts = {p["id"]: p["text"] for p in (good.principles if good else [])}
        reason = f"discarded with held version {held[-1].number}"
        active_principles(project).exclude(pk__in=texts).update(
            retired=True, retired_reason=reason[:200], updated_at=timezone.now()
        )
        for principle in Principle.objects.filter(project=project, pk__in=texts):
            if principle.retired or principle.text != texts[principle.pk]:
                principle.retired, principle.retired_reason, principle.text = False, "", texts[principle.pk]
                principle.save(update_fields=["retired", "retired_reason", "text", "updated_at"])
        MemoryVersion.objects.filter(pk__in=[v.pk for v in held]).update(status=MemoryVersion.Status.DISCARDED)
        back_to = f"v{good.number}" if good else "no principles"
        summary = f"held version{'s' if len(held) > 1 else ''} {', '.join(str(v.number) for v in held)} discarded by {author_name}: back to {back_to}"
        return _new_version(project, MemoryVersion.Trigger.MANUAL, _Manual(), Usage(), time.monotonic(), summary)
