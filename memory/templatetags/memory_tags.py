"""The memory pages' shared sub-navigation: one tab per page, the active one marked for assistive technology."""

from __future__ import annotations

from typing import Any

from django import template

from memory import budget

register = template.Library()


@register.inclusion_tag("memory/_memory_nav.html", takes_context=True)
def memory_nav(context: template.Context, tab: str) -> dict[str, Any]:
    """Render the sub-navigation with `tab` current; the apps above add their tabs through the "memory-tabs" slot."""
    project = context["project"]
    return {
        "request": context.get("request"),
        "project": project,
        "membership": context.get("membership"),
        "tab": tab,
        "active_version": budget.latest_version(project),
    }
