"""The memory's audit log: who changed what in the semantic memory, when, and from which version to which.

The bookkeeping is django-auditlog's: every save of a Principle or a MemoryVersion writes a LogEntry with the
fields that changed, the acting user (AuditlogMiddleware for requests, `acting_as` for domain code called
elsewhere) and the time. What this module adds is the project and the version numbers: a principle's entry
carries {"project"} when it is written, and `record_version` adds the versions the change went from and to when
the transaction writes the version that contains it (memory.versions.new_version). Changes written with
QuerySet.update (the automatic unalign, merge and realign steps) send no signal: `record_version` logs them
from the difference between the two versions' snapshots.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, TypedDict

from auditlog.context import auditlog_value, set_actor
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet

from memory.models import MemoryVersion, Principle
from reviews import spreadsheets
from reviews.models import Project

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

PRINCIPLE_FIELDS = ["text", "label", "origin", "pinned", "retired", "retired_reason"]
VERSION_FIELDS = ["number", "trigger", "status", "summary"]
ACTIONS = {LogEntry.Action.CREATE: "created", LogEntry.Action.UPDATE: "changed", LogEntry.Action.DELETE: "deleted"}


def register() -> None:
    """Have django-auditlog record principles and versions (called once, from MemoryConfig.ready)."""
    if not auditlog.contains(Principle):
        auditlog.register(Principle, include_fields=PRINCIPLE_FIELDS)
    if not auditlog.contains(MemoryVersion):
        auditlog.register(MemoryVersion, include_fields=VERSION_FIELDS)


@contextmanager
def acting_as(user: User | None) -> Iterator[None]:
    """Attribute the log entries written in the block to `user` (None: leave them to whatever the request set).

    auditlog's own `set_actor` does not restore an outer context (the request's), so this restores it."""
    if user is None:
        yield
        return
    outer = auditlog_value.get(None)
    try:
        with set_actor(user):
            yield
    finally:
        if outer is not None:
            auditlog_value.set(outer)


def record_version(project: Project, version: MemoryVersion) -> None:
    """Complete the log for a new version, in the transaction that writes it: the principle entries written since
    the last version are stamped as going from it to this one, and every other principle whose state differs
    between the two versions' snapshots (changed with QuerySet.update by the automatic unalign, merge and
    realign steps, which send no signal) gets an entry of its own, so each change appears once."""
    stamp = {"project": project.pk, "from_version": version.number - 1, "to_version": version.number}
    pending = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Principle),
        object_id__in=Principle.objects.filter(project=project).values("pk"),
        additional_data={"project": project.pk},
    )
    logged = set(pending.values_list("object_id", flat=True))
    pending.update(additional_data=stamp)
    previous = MemoryVersion.objects.filter(project=project, number=version.number - 1).first()
    before = {entry["id"]: entry for entry in (previous.principles if previous else [])}
    after = {entry["id"]: entry for entry in version.principles}
    unlogged = {pk for pk in before.keys() | after.keys() if before.get(pk) != after.get(pk)} - logged
    for principle in Principle.objects.filter(pk__in=unlogged, project=project).order_by("pk"):
        changes = _snapshot_changes(before.get(principle.pk), after.get(principle.pk), principle)
        if changes:
            LogEntry.objects.log_create(
                principle, force_log=True, action=LogEntry.Action.UPDATE, changes=changes, additional_data=stamp
            )


def _snapshot_changes(
    old: Mapping[str, object] | None, new: Mapping[str, object] | None, principle: Principle
) -> dict[str, list[str]]:
    """auditlog's {field: [before, after]} for a principle between two snapshots (None: not active there)."""
    if new is None:
        changes = {"retired": ["False", "True"]}
        if principle.retired_reason:
            changes["retired_reason"] = ["", principle.retired_reason]
        return changes
    if old is None:
        return {"retired": ["True", "False"]}
    return {
        name: [str(old[name]), str(new[name])]
        for name in ("text", "label", "pinned")
        if name in old and name in new and old[name] != new[name]
    }


def entries(
    project: Project,
    actor: str = "",
    kind: str = "",
    action: str = "",
    since: date | None = None,
    until: date | None = None,
    version: int | None = None,
    q: str = "",
    withheld: Collection[int] = (),
) -> QuerySet[LogEntry]:
    """The project's memory log entries, newest first, filtered as the audit page asks, without the entries of
    principles in `withheld` (memory.blind)."""
    kinds = {"principle": Principle, "version": MemoryVersion}
    types = ContentType.objects.get_for_models(*kinds.values())
    wanted = [types[kinds[kind]]] if kind in kinds else list(types.values())
    rows: QuerySet[LogEntry] = LogEntry.objects.filter(content_type__in=wanted, additional_data__project=project.pk)
    if withheld:
        rows = rows.exclude(content_type=types[Principle], object_pk__in=[str(pk) for pk in withheld])
    if actor == "-":
        rows = rows.filter(actor__isnull=True)
    elif actor:
        rows = rows.filter(actor__username=actor)
    codes = {name: code for code, name in ACTIONS.items()}
    if action in codes:
        rows = rows.filter(action=codes[action])
    if since:
        rows = rows.filter(timestamp__date__gte=since)
    if until:
        rows = rows.filter(timestamp__date__lte=until)
    if version is not None:
        rows = rows.filter(additional_data__to_version=version)
    if q:
        rows = rows.filter(Q(object_repr__icontains=q) | Q(changes_text__icontains=q) | Q(changes__icontains=q))
    return rows.select_related("actor", "content_type").order_by("-timestamp", "-id")


class AuditRow(TypedDict):
    """One log entry as the audit page and its CSV show it; `changes` holds (field, before, after)."""

    id: int
    when: datetime
    actor: str
    kind: str
    object_id: int | None
    object: str
    action: str
    changes: list[tuple[str, str, str]]
    from_version: int | None
    to_version: int | None


def describe(entry: LogEntry) -> AuditRow:
    """One entry as the audit page and its CSV show it."""
    data = entry.additional_data or {}
    changes = entry.changes_dict if isinstance(entry.changes_dict, dict) else {}
    return {
        "id": entry.pk,
        "when": entry.timestamp,
        "actor": entry.actor.username if entry.actor else "",
        "kind": "version" if entry.content_type.model == "memoryversion" else "principle",
        "object_id": entry.object_id,
        "object": entry.object_repr,
        "action": ACTIONS.get(entry.action, str(entry.action)),
        "changes": [
            (field, _short(before), _short(after))
            for field, (before, after) in sorted(changes.items())
            # a creation lists what it set, not every empty field
            if entry.action != LogEntry.Action.CREATE or _short(after) not in ("", "False")
        ],
        "from_version": data.get("from_version"),
        "to_version": data.get("to_version"),
    }


def _short(value: object) -> str:
    text = "" if value in (None, "None") else str(value)
    return text if len(text) <= 500 else text[:499] + "…"


CSV_HEADER = ["id", "when", "actor", "kind", "object_id", "object", "action", "changes", "from_version", "to_version"]


def write_csv(out: SupportsWrite[str], rows: Iterable[LogEntry]) -> None:
    """Write entries as CSV (one row each; the changes as `field: before → after` joined by `; `)."""
    writer = spreadsheets.writer(out)
    writer.writerow(CSV_HEADER)
    for entry in rows:
        row = describe(entry)
        cells: dict[str, object] = {
            **row,
            "when": row["when"].isoformat(),
            "changes": "; ".join(f"{field}: {before} → {after}" for field, before, after in row["changes"]),
        }
        writer.writerow([cells[key] for key in CSV_HEADER])
