"""Showing untrusted judge data: every value goes through Django's autoescaping, never |safe."""

from __future__ import annotations

import json

from django import template

register = template.Library()

LONG_TEXT = 1_500


@register.filter
def fields(value) -> list[tuple[str, str, bool]]:
    """Return (name, text, is_json) for each part of an inputs/expectations value, JSON pretty-printed."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return [(str(key), *_text(item)) for key, item in value.items()]
    return [("", *_text(value))]


def _text(value) -> tuple[str, bool]:
    if isinstance(value, str):
        return value, False
    return json.dumps(value, indent=2, ensure_ascii=False), True


@register.filter
def is_long(text: str) -> bool:
    return len(text or "") > LONG_TEXT
