"""Showing untrusted judge data: every value goes through Django's autoescaping, never |safe."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

from reviews import panels as registry
from reviews import rendering
from reviews.models import Feedback, Sample

register = template.Library()


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
    return rendering.is_long(text)


@register.filter
def preview(text: str) -> str:
    return rendering.preview(text)


@register.filter
def rendered(value: Any) -> SafeString:
    """Show a judged value as it reads (reviews/rendering.py): a chat as a conversation, Markdown formatted."""
    return rendering.render(value)


@register.inclusion_tag("reviews/_output.html")
def output(sample: Sample, which: str = "", feedback: Feedback | None = None) -> dict[str, Any]:
    """Show one of a sample's outputs ("" the only one, "a" or "b" for pairwise) as it reads, with the passage
    `feedback` quoted from it highlighted while it still reads the same."""
    raw = sample.output_by_name(which)
    span = None
    if feedback is not None and feedback.quote_output == which and feedback.quote_matches():
        span = (feedback.quote_start or 0, feedback.quote_end or 0)  # quote_matches: both set
    return {"raw": raw, "html": rendering.render(raw, span), "which": which, "quoted": span is not None}


@register.filter
def word_diff(sample: Sample) -> SafeString:
    return rendering.word_diff(sample.output_a, sample.output_b)


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
    return rendering.plain_text(value)


@register.simple_tag(takes_context=True)
def panels(context: template.Context, slot: str) -> SafeString:
    """Render the panels the apps above reviews registered for this slot (reviews/panels.py)."""
    page: dict[str, Any] = {str(name): value for name, value in context.flatten().items()}
    rendered = []
    for panel in registry.panels(slot):
        extra = panel.context(page) if panel.context else {}
        rendered.append(get_template(panel.template).render({**page, **extra}, page.get("request")))
    return mark_safe("".join(rendered))  # each panel is a template rendered with autoescaping
