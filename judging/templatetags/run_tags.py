"""Template filters of the run pages."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def duration(start: datetime | None, end: datetime | None) -> str:
    """Return the time from `start` to `end` the way people say it: "0.4 s", "41 s", "3 min 5 s", "1 h 2 min"."""
    if start is None or end is None:
        return "–"
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s" if whole % 60 else f"{whole // 60} min"
    minutes = round(whole / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"


@register.filter
def thousands(value: int | None) -> str:
    """Return 12345 as "12,345" (token counts)."""
    return f"{value or 0:,}"
