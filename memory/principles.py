"""Owners' corrections to the semantic memory, and its history: edit, pin, retire, restore, add, roll back, diff.

Every change holds the project's writer lock (one writer at a time, as regeneration does), happens in one
transaction and writes a new MemoryVersion that says what changed; history is never rewritten (a rollback is a
new version with an old version's principles). Other modules make versions the same way:

    with principles.changing(project, actor=user):
        ...                                                # change Principle rows
        versions.new_version(project, MemoryVersion.Trigger.UNALIGN, actor=user, summary="…")
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q

from memory import versions
from memory.audit import acting_as
from memory.locks import memory_writer
from memory.models import Contradiction, MemoryVersion, Principle
from memory.versions import PrincipleSnapshot
from reviews.models import Project

Trigger = MemoryVersion.Trigger


class NothingToChange(ValueError):
    """The requested change would leave the memory as it is (no version is written)."""


@contextmanager
def changing(
    project: Project, actor: User | None = None, wait: float | None = versions.EDIT_WAIT_SECONDS
) -> Iterator[None]:
    """Hold the project's writer lock (waiting up to `wait` seconds, then raising memory.locks.MemoryBusy), open
    a transaction with the project row locked, and attribute audit-log entries to `actor`."""
    with memory_writer(project.pk, wait=wait), transaction.atomic(), acting_as(actor):
        versions.lock_project(project)
        yield


def _name(actor: User | None) -> str:
    return getattr(actor, "username", "") or "someone"


def _locked(project: Project, principle: Principle) -> Principle:
    # Re-read inside the lock: the page the owner edited from may be older than a regeneration since.
    return Principle.objects.get(pk=principle.pk, project=project)


def edit_text(project: Project, principle: Principle, text: str, actor: User | None) -> MemoryVersion:
    """Reword a principle; raise NothingToChange when the text is the same."""
    text = versions.clean_text(text)
    if not text:
        raise NothingToChange("A principle needs some text.")
    with changing(project, actor):
        principle = _locked(project, principle)
        if principle.text == text:
            raise NothingToChange("The text is unchanged.")
        principle.text = text
        principle.save(update_fields=["text", "updated_at"])
        return versions.new_version(
            project, Trigger.MANUAL, actor=actor, summary=f"principle {principle.pk} reworded by {_name(actor)}"
        )


def set_pinned(project: Project, principle: Principle, pinned: bool, actor: User | None) -> MemoryVersion:
    """Pin a principle (consolidation, re-derivation and realignment then never merge, rewrite or retire it) or
    unpin it."""
    with changing(project, actor):
        principle = _locked(project, principle)
        if principle.pinned == pinned:
            raise NothingToChange(f"Principle {principle.pk} is already {'pinned' if pinned else 'not pinned'}.")
        principle.pinned = pinned
        principle.save(update_fields=["pinned", "updated_at"])
        verb = "pinned" if pinned else "unpinned"
        return versions.new_version(
            project, Trigger.MANUAL, actor=actor, summary=f"principle {principle.pk} {verb} by {_name(actor)}"
        )


def set_retired(project: Project, principle: Principle, retired: bool, actor: User | None) -> MemoryVersion:
    """Retire a principle (the judge stops using it) or restore it."""
    if _locked(project, principle).retired == retired:
        raise NothingToChange(f"Principle {principle.pk} is already {'retired' if retired else 'active'}.")
    return versions.set_retired(project, principle, retired, _name(actor), actor=actor)


def add(project: Project, text: str, actor: User | None, label: str = "", pinned: bool = True) -> Principle:
    """Add a hand-written principle (pinned unless told otherwise); its `created_in` is the new version."""
    if label and label not in project.label_choices:
        raise NothingToChange(f"“{label}” is not one of this project's labels.")
    return versions.add_manual_principle(project, text, _name(actor), actor=actor, label=label, pinned=pinned)


def rollback(project: Project, target: MemoryVersion, actor: User | None) -> MemoryVersion:
    """Make `target`'s principles the active ones again, as a new version: principles active now but not in it
    are retired, its principles restored with its wording (and label and pin, where it recorded them). Versions
    the regression gate holds are discarded: the new version is the active one.

    Raise NothingToChange when the active principles already are the target's. A restored principle whose
    source critiques were removed since is re-derived by the next regeneration, like any other (unalign).
    """
    with changing(project, actor):
        target = MemoryVersion.objects.get(pk=target.pk, project=project)
        wanted = {entry["id"]: entry for entry in target.principles}
        reason = f"rolled back to v{target.number} by {_name(actor)}"[:200]
        leaving = list(versions.active_principles(project).exclude(pk__in=wanted))
        for gone in leaving:
            gone.retired, gone.retired_reason = True, reason
            gone.save(update_fields=["retired", "retired_reason", "updated_at"])
        existing = Principle.objects.in_bulk(list(wanted))
        changed = 0
        for pk, entry in wanted.items():
            principle = existing.get(pk)
            if principle is None or principle.project_id != project.pk:
                continue  # deleted in the admin since: nothing to restore it from but its text, below
            fields = {"retired": False, "retired_reason": "", "text": entry["text"]}
            fields.update({key: entry[key] for key in ("label", "pinned") if key in entry})
            updated = [name for name, value in fields.items() if getattr(principle, name) != value]
            if updated:
                for name in updated:
                    setattr(principle, name, fields[name])
                principle.save(update_fields=[*updated, "updated_at"])
                changed += 1
        recreated = 0
        for pk, entry in wanted.items():
            if pk not in existing or existing[pk].project_id != project.pk:
                Principle.objects.create(
                    project=project,
                    text=entry["text"],
                    label=entry.get("label", ""),
                    pinned=entry.get("pinned", True),
                    origin=Principle.Origin.MANUAL,
                )
                recreated += 1
        if not leaving and not changed and not recreated:
            raise NothingToChange(f"The active principles already are v{target.number}'s.")
        _resolve_contradictions(project)
        # The owner chose the principles: versions the regression gate held are settled (discarding them later
        # would go back to before this rollback).
        held = MemoryVersion.objects.filter(project=project, status=MemoryVersion.Status.HELD)
        discarded = sorted(held.values_list("number", flat=True))
        held.update(status=MemoryVersion.Status.DISCARDED)
        summary = (
            f"rolled back to v{target.number} by {_name(actor)}: {len(leaving)} retired, "
            f"{changed} restored or reworded{f', {recreated} recreated' if recreated else ''}"
            f"{'; held ' + ', '.join(f'v{n}' for n in discarded) + ' discarded' if discarded else ''}"
        )
        return versions.new_version(project, Trigger.ROLLBACK, actor=actor, summary=summary)


def _resolve_contradictions(project: Project) -> None:
    """A contradiction one of whose principles is retired is settled."""
    Contradiction.objects.filter(project=project, resolved=False).filter(
        Q(first__retired=True) | Q(second__retired=True)
    ).update(resolved=True)


# Diffs between versions -----------------------------------------------------------------------------------


@dataclass
class Reworded:
    id: int
    before: str
    after: str
    words: list[tuple[str, str]]  # (op, text): op is "same", "removed" or "added"
    label_before: str | None = None
    label_after: str | None = None


@dataclass
class Diff:
    old: MemoryVersion | None
    new: MemoryVersion
    added: list[PrincipleSnapshot] = field(default_factory=list)
    removed: list[PrincipleSnapshot] = field(default_factory=list)
    reworded: list[Reworded] = field(default_factory=list)
    pinned: list[PrincipleSnapshot] = field(
        default_factory=list
    )  # same text, pin changed (where both versions recorded it)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.reworded or self.pinned)


def diff(old: MemoryVersion | None, new: MemoryVersion, withheld: Collection[int] = ()) -> Diff:
    """What changed in the active principles from `old` to `new` (any two versions, either order): principles
    added, removed, reworded (with a word-level change) or re-labelled, and pins changed. `old` None: from nothing.
    Principles in `withheld` (memory.blind) are left out.
    """
    before: dict[int, PrincipleSnapshot] = {
        entry["id"]: entry for entry in (old.principles if old else []) if entry["id"] not in withheld
    }
    after: dict[int, PrincipleSnapshot] = {
        entry["id"]: entry for entry in new.principles if entry["id"] not in withheld
    }
    result = Diff(old, new)
    result.added = [after[pk] for pk in after if pk not in before]
    result.removed = [before[pk] for pk in before if pk not in after]
    for pk in (pk for pk in after if pk in before):
        a, b = before[pk], after[pk]
        label_changed = "label" in a and "label" in b and a["label"] != b["label"]
        if a["text"] != b["text"] or label_changed:
            result.reworded.append(
                Reworded(
                    pk,
                    a["text"],
                    b["text"],
                    word_diff(a["text"], b["text"]),
                    a.get("label") if label_changed else None,
                    b.get("label") if label_changed else None,
                )
            )
        elif "pinned" in a and "pinned" in b and a["pinned"] != b["pinned"]:
            result.pinned.append(b)
        else:
            result.unchanged += 1
    return result


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """The wording change from `before` to `after`, word by word (difflib), as (op, text) runs."""
    a, b = re.findall(r"\S+\s*", before), re.findall(r"\S+\s*", after)
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            runs.append(("removed", "".join(a[i1:i2])))
        if j2 > j1:
            runs.append(("added", "".join(b[j1:j2])))
    return runs
