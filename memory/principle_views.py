"""Pages for reading and correcting the semantic memory: principles, versions and their diffs, rollback, and the
audit log. Viewers read everything; owners change things (memory.principles does the work)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from memory import audit, blind, budget, principles
from memory.forms import PrincipleAddForm, PrincipleEditForm
from memory.locks import MemoryBusy
from memory.models import Contradiction, MemoryVersion, Principle, PrincipleSource
from reviews.models import Membership, Role
from reviews.permissions import ProjectRequest, can, project_view, require, visible_feedback

PAGE_SIZE = 50
PRINCIPLE_STATUSES = {"active": "Active", "retired": "Retired", "all": "All"}


def _owner(request: ProjectRequest) -> bool:
    return can(request.membership, Role.OWNER)


def _base(request: ProjectRequest) -> dict:
    """What every page here shows: the project, the member's role, and which version the judge uses."""
    return {
        "project": request.project,
        "membership": request.membership,
        "is_owner": _owner(request),
        "active_version": budget.latest_version(request.project),
    }


def _sources(request: ProjectRequest):
    return visible_sources(request.membership)


def visible_sources(membership):
    """Source links the member may see (a blind reviewer: on samples they reviewed themselves)."""
    rows = visible_feedback(membership, PrincipleSource.objects.filter(feedback__isnull=False), "feedback__")
    return rows.select_related("feedback__author", "feedback__sample").order_by("feedback_id")


def _flagged(project):
    unresolved = Contradiction.objects.filter(project=project, resolved=False)
    return Exists(unresolved.filter(Q(first=OuterRef("pk")) | Q(second=OuterRef("pk"))))


@project_view(Role.VIEWER)
@require_http_methods(["GET", "POST"])
def principle_list(request: ProjectRequest) -> HttpResponse:
    """GET: the principles, searchable and filtered. POST (owners): add one by hand."""
    project = request.project
    if request.method == "POST":
        return _add(request)
    query = {
        "status": request.GET.get("status", "active"),
        "q": request.GET.get("q", "").strip()[:200],
        "origin": request.GET.get("origin", ""),
        "pinned": request.GET.get("pinned", ""),
        "label": request.GET.get("label", ""),
        "flag": request.GET.get("flag", ""),
        "author": request.GET.get("author", "").strip()[:150],
    }
    rows = (
        Principle.objects.filter(project=project)
        .exclude(pk__in=blind.withheld_principle_ids(request.membership, project))
        .annotate(flagged=_flagged(project))
    )
    if query["status"] == "active":
        rows = rows.filter(retired=False)
    elif query["status"] == "retired":
        rows = rows.filter(retired=True)
    if query["q"]:
        rows = rows.filter(text__icontains=query["q"])
    if query["origin"] in Principle.Origin.values:
        rows = rows.filter(origin=query["origin"])
    if query["pinned"] in ("yes", "no"):
        rows = rows.filter(pinned=query["pinned"] == "yes")
    if query["label"]:
        rows = rows.filter(label="" if query["label"] == "-" else query["label"])
    if query["flag"] == "contradiction":
        rows = rows.filter(flagged=True)
    if query["author"]:
        by_author = _sources(request).filter(feedback__author__username=query["author"])
        rows = rows.filter(pk__in=by_author.values("principle_id"))
    page = Paginator(rows.select_related("created_in").order_by("retired", "id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    add_source_figures(request.membership, page.object_list)
    context = {
        **_base(request),
        "page": page,
        "query": query,
        "query_string": urlencode({k: v for k, v in query.items() if v}),
        "statuses": PRINCIPLE_STATUSES,
        "origins": Principle.Origin.choices,
        "labels": project.label_choices,
        "add_form": PrincipleAddForm(project),
    }
    return render(request, "memory/principles.html", context)


def add_source_figures(membership: Membership, principles_shown: Iterable[Principle]) -> None:
    """Give each principle of a page its visible source count, first authors and removed sources, in three
    grouped queries (a consolidated principle may cite hundreds of critiques: none are loaded)."""
    page = list(principles_shown)  # a page's queryset caches its rows: the template shows these same objects
    ids = [p.pk for p in page]
    visible = visible_sources(membership).filter(principle_id__in=ids).order_by()
    counts = dict(visible.values("principle_id").annotate(n=Count("pk")).values_list("principle_id", "n"))
    authors: dict[int, list[str]] = {}
    for pk, name in visible.values_list("principle_id", "feedback__author__username").distinct():
        authors.setdefault(pk, []).append(name)
    lost = dict(
        PrincipleSource.objects.filter(principle_id__in=ids, feedback__isnull=True)
        .values("principle_id")
        .annotate(n=Count("pk"))
        .values_list("principle_id", "n")
    )
    for principle in page:
        principle.source_count = counts.get(principle.pk, 0)
        principle.authors = sorted(authors.get(principle.pk, []))
        principle.lost = lost.get(principle.pk, 0)


def _add(request: ProjectRequest) -> HttpResponse:
    require(request.membership, Role.OWNER)
    project = request.project
    form = PrincipleAddForm(project, request.POST)
    if not form.is_valid():
        messages.error(request, "Write the principle in 1 to 1,000 characters, and pick one of the project's labels.")
        return redirect("principles", project.slug)
    data = form.cleaned_data
    try:
        principle = principles.add(project, data["text"], request.user, label=data["label"], pinned=data["pinned"])
    except (principles.NothingToChange, MemoryBusy) as busy:
        messages.error(request, str(busy))
        return redirect("principles", project.slug)
    assert principle.created_in is not None  # principles.add records the version that added it
    messages.success(
        request,
        f"Principle {principle.pk} added (memory version {principle.created_in.number})"
        + ("; it is pinned, so it stays until you retire it." if principle.pinned else "."),
    )
    return redirect("principle", project.slug, principle.pk)


@project_view(Role.VIEWER)
@require_GET
def principle_page(request: ProjectRequest, principle_id: int) -> HttpResponse:
    project = request.project
    principle = get_object_or_404(
        Principle.objects.select_related("created_in")
        .exclude(pk__in=blind.withheld_principle_ids(request.membership, project))
        .annotate(flagged=_flagged(project)),
        pk=principle_id,
        project=project,
    )
    contradictions = (
        Contradiction.objects.filter(project=project)
        .filter(Q(first=principle) | Q(second=principle))
        .select_related("first", "second")
    )
    history = audit.entries(project, kind="principle").filter(object_id=principle.pk)
    context = {
        **_base(request),
        "principle": principle,
        "sources": list(_sources(request).filter(principle=principle)),
        "lost": principle.sources.filter(feedback__isnull=True).count(),
        "contradictions": [
            (c, c.second if c.first_id == principle.pk else c.first, c.resolved) for c in contradictions
        ],
        "history": [audit.describe(e) for e in history[:50]],
        "edit_form": PrincipleEditForm(initial={"text": principle.text}),
    }
    return render(request, "memory/principle.html", context)


def _change(request: ProjectRequest, principle_id: int, change) -> HttpResponse:
    """Run one owner's change on a principle; say which version it made, or why it made none."""
    principle = get_object_or_404(Principle, pk=principle_id, project=request.project)
    try:
        version, what = change(principle)
    except (principles.NothingToChange, MemoryBusy) as reason:
        messages.error(request, str(reason))
    else:
        messages.success(request, f"Principle {principle.pk} {what} (memory version {version.number}).")
    return redirect("principle", request.project.slug, principle.pk)


@project_view(Role.OWNER)
@require_POST
def principle_edit(request: ProjectRequest, principle_id: int) -> HttpResponse:
    get_object_or_404(Principle, pk=principle_id, project=request.project)
    form = PrincipleEditForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write the principle in 1 to 1,000 characters.")
        return redirect("principle", request.project.slug, principle_id)
    text = form.cleaned_data["text"]
    return _change(
        request, principle_id, lambda p: (principles.edit_text(request.project, p, text, request.user), "reworded")
    )


@project_view(Role.OWNER)
@require_POST
def principle_pin(request: ProjectRequest, principle_id: int) -> HttpResponse:
    pin = request.POST.get("action") != "unpin"
    return _change(
        request,
        principle_id,
        lambda p: (principles.set_pinned(request.project, p, pin, request.user), "pinned" if pin else "unpinned"),
    )


@project_view(Role.OWNER)
@require_POST
def principle_retire(request: ProjectRequest, principle_id: int) -> HttpResponse:
    retire = request.POST.get("action") != "restore"
    return _change(
        request,
        principle_id,
        lambda p: (
            principles.set_retired(request.project, p, retire, request.user),
            "retired" if retire else "restored",
        ),
    )


@project_view(Role.VIEWER)
@require_GET
def version_list(request: ProjectRequest) -> HttpResponse:
    project = request.project
    rows = MemoryVersion.objects.filter(project=project).select_related("actor").order_by("-number")
    trigger = request.GET.get("trigger", "")
    if trigger in MemoryVersion.Trigger.values:
        rows = rows.filter(trigger=trigger)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        **_base(request),
        "page": page,
        "trigger": trigger,
        "triggers": MemoryVersion.Trigger.choices,
        "latest_number": rows.values_list("number", flat=True).first(),
    }
    return render(request, "memory/versions.html", context)


def _version_number(value: str | None, name: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise ValueError(f"“{name}” must be a version number.") from None


@project_view(Role.VIEWER)
@require_GET
def version_compare(request: ProjectRequest) -> HttpResponse:
    """The diff between versions `a` and `b` (any two, either order; default: the last two)."""
    project = request.project
    versions = MemoryVersion.objects.filter(project=project).select_related("actor")
    newest = versions.order_by("-number").first()
    context = _base(request)
    if newest is None:
        return render(request, "memory/compare.html", {**context, "error": "There is no memory version yet."})
    try:
        b = _version_number(request.GET.get("b") or str(newest.number), "b")
        a = _version_number(request.GET.get("a") or str(b - 1), "a")
    except ValueError as error:
        return render(request, "memory/compare.html", {**context, "error": str(error)}, status=400)
    found = {v.number: v for v in versions.filter(number__in=[a, b])}
    missing = [n for n in (a, b) if n not in found and n != 0]
    if missing:
        context["error"] = f"This project has no version {missing[0]} (the versions go from 1 to {newest.number})."
        return render(request, "memory/compare.html", context, status=404)
    withheld = blind.withheld_principle_ids(request.membership, project)
    listed = [p for p in found[b].principles if p["id"] not in withheld]
    diff = principles.diff(found.get(a), found[b], withheld)
    context.update({"a": a, "b": b, "diff": diff, "listed": listed, "latest": newest.number})
    return render(request, "memory/compare.html", context)


@project_view(Role.OWNER)
@require_http_methods(["GET", "POST"])
def version_rollback(request: ProjectRequest, number: int) -> HttpResponse:
    """GET: what rolling back to this version would change. POST: do it, as a new version."""
    project = request.project
    target = get_object_or_404(MemoryVersion.objects.select_related("actor"), project=project, number=number)
    if request.method == "POST":
        try:
            version = principles.rollback(project, target, request.user)
        except (principles.NothingToChange, MemoryBusy) as reason:
            messages.error(request, str(reason))
            return redirect("version-rollback", project.slug, number)
        messages.success(request, f"Rolled back to v{target.number}'s principles as version {version.number}.")
        return redirect(f"{_url('version-compare', project.slug)}?a={number}&b={version.number}")
    newest = MemoryVersion.objects.filter(project=project).order_by("-number").first()
    context = {**_base(request), "target": target, "newest": newest, "diff": principles.diff(newest, target)}
    return render(request, "memory/rollback.html", context)


def _url(name: str, slug: str) -> str:
    from django.urls import reverse

    return reverse(name, args=[slug])


def _audit_filters(request: ProjectRequest) -> tuple[dict[str, Any], str]:
    """The audit page's filters from the query string (audit.entries' arguments), and a message for one that is
    malformed."""
    get = request.GET
    filters: dict[str, Any] = {
        "actor": get.get("actor", "").strip()[:150],
        "kind": get.get("kind", ""),
        "action": get.get("action", ""),
        "q": get.get("q", "").strip()[:200],
        "since": None,
        "until": None,
        "version": None,
    }
    error = ""
    for name in ("since", "until"):
        if get.get(name):
            try:
                filters[name] = date.fromisoformat(get[name])
            except ValueError:
                error = f"“{name}” must be a date such as 2026-01-31."
    if get.get("version"):
        try:
            filters["version"] = int(get["version"])
        except ValueError:
            error = "“version” must be a version number."
    return filters, error


@project_view(Role.VIEWER)
@require_GET
def audit_log(request: ProjectRequest) -> HttpResponse:
    project = request.project
    filters, error = _audit_filters(request)
    context = {
        **_base(request),
        "filters": filters,
        "error": error,
        "actions": list(audit.ACTIONS.values()),
        "query_string": urlencode({k: v for k, v in request.GET.dict().items() if k != "page" and v}),
    }
    if error:
        return render(request, "memory/audit.html", context, status=400)
    withheld = blind.withheld_principle_ids(request.membership, project)
    page = Paginator(audit.entries(project, **filters, withheld=withheld), PAGE_SIZE).get_page(request.GET.get("page"))
    context.update({"page": page, "rows": [audit.describe(e) for e in page.object_list]})
    return render(request, "memory/audit.html", context)


@project_view(Role.VIEWER)
@require_GET
def audit_csv(request: ProjectRequest) -> HttpResponse:
    project = request.project
    filters, error = _audit_filters(request)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-memory-audit.csv"'
    withheld = blind.withheld_principle_ids(request.membership, project)
    audit.write_csv(response, audit.entries(project, **filters, withheld=withheld).iterator(chunk_size=500))
    return response
