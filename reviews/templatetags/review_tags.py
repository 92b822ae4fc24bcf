"""Showing untrusted judge data: every value goes through Django's autoescaping, never |safe."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

from reviews import panels as registry

register = template.Library()

LONG_TEXT = 1_500  # characters; a text longer than this, or taller than LONG_LINES, starts collapsed
LONG_LINES = 30
PREVIEW_CHARS = 400
PREVIEW_LINES = 6


@register.filter
def fields(value) -> list[tuple[str, str, bool]]:
    """Return (name, text, is_json) for each part of an inputs/expectations value, JSON pretty-printed.

    A dict is shown key by key; anything else as one part. Text that is itself a JSON object or array (a judged
    output in JSON, say) is pretty-printed too.
    """
    if value is None or value == "":
        return []
    if isinstance(value, dict) and value:
        return [(str(key), *_text(item)) for key, item in value.items()]
    return [("", *_text(value))]


def _text(value) -> tuple[str, bool]:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                return value, False
            if isinstance(parsed, (dict, list)):
                return json.dumps(parsed, indent=2, ensure_ascii=False), True
        return value, False
    return json.dumps(value, indent=2, ensure_ascii=False), True


@register.filter
def is_long(text: str) -> bool:
    text = text or ""
    return len(text) > LONG_TEXT or text.count("\n") >= LONG_LINES


@register.filter
def preview(text: str) -> str:
    """Return the start of a long text: at most PREVIEW_LINES lines and PREVIEW_CHARS characters, then "…"."""
    lines = (text or "").split("\n")
    shown = "\n".join(lines[:PREVIEW_LINES])
    if len(shown) > PREVIEW_CHARS:
        shown = shown[:PREVIEW_CHARS]
    return shown + "…" if len(shown) < len(text or "") else shown


@register.filter
def label_key(position: int) -> str:
    """Return the digit key that picks the label at 1-based `position`: 1..9, then 0, then none."""
    if 1 <= position <= 9:
        return str(position)
    return "0" if position == 10 else ""


@register.filter
def one_line(value, limit: int = 160) -> str:
    """Return a value as one readable line for a table cell: a dict's fields as "name: text · name: text" (a lone
    field's text alone), whitespace collapsed, cut at `limit` characters (no raw JSON braces and quotes around text)."""
    if value is None or value == "":
        return ""
    if isinstance(value, dict) and len(value) == 1:
        text = _plain(next(iter(value.values())))  # one field: its name adds nothing in a cell
    elif isinstance(value, dict):
        text = " · ".join(f"{key}: {_plain(item)}" for key, item in value.items())
    else:
        text = _plain(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _plain(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@register.simple_tag(takes_context=True)
def panels(context: template.Context, slot: str) -> SafeString:
    """Render the panels the apps above reviews registered for this slot (reviews/panels.py)."""
    page: dict[str, Any] = {str(name): value for name, value in context.flatten().items()}
    rendered = []
    for panel in registry.panels(slot):
        extra = panel.context(page) if panel.context else {}
        rendered.append(get_template(panel.template).render({**page, **extra}, page.get("request")))
    return mark_safe("".join(rendered))  # each panel is a template rendered with autoescaping
