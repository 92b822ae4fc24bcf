"""Slots where the apps above reviews add to its pages, so that reviews' templates name no other app.

An app registers a panel in its AppConfig.ready(): a slot name, the template that renders it, and optionally a
function that adds to the page's context (it gets the page's context and returns what the template needs).
A reviews template renders a slot with `{% panels "slot" %}` (review_tags); an empty slot renders nothing.

Slots: "overview-headline" (the top of the project overview) and "overview" (its foot), "review-aside" (the review page, under the
sample), "queue-actions" (the queue, under its filters), "project-list-actions" (the project list's buttons),
"memory-tabs" (the memory pages' sub-navigation: the upper apps' own pages under /memory/), "memory-overview"
(the memory's overview, under its figures), "memory-links" (its links line), "memory-offline-judge" (its offline-mode banner: how the aligned judge decides), "memory-settings" (the memory's
settings page) and "settings-actions" (the project settings page, under the form).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

ContextFunction = Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Panel:
    template: str
    context: ContextFunction | None
    order: int


_slots: dict[str, list[Panel]] = {}


def register(slot: str, template: str, context: ContextFunction | None = None, order: int = 50) -> None:
    """Add a panel to a slot, shown in `order` (then registration order); registering it again replaces it."""
    panels = [p for p in _slots.get(slot, []) if p.template != template]
    panels.append(Panel(template, context, order))
    _slots[slot] = sorted(panels, key=lambda p: p.order)


def panels(slot: str) -> list[Panel]:
    return list(_slots.get(slot, []))
