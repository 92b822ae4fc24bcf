"""Agreement figures in words, read again at render time: a run's stored figures carry the reading of their day,
and the words (too few samples, a collapsed interval) depend on the number of items as well as the figure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

from agreement import metrics

register = template.Library()


def _field(figures: Any, name: str) -> Any:
    """A metrics.Figures, or the dict it was stored as."""
    return figures.get(name) if isinstance(figures, Mapping) else getattr(figures, name, None)


@register.filter
def reading(figures: Any) -> str:
    """ "good enough to watch trends", …, or "too few samples to judge (5 of 10 needed)"."""
    return metrics.reading(_field(figures, "headline"), _field(figures, "n"))


@register.filter
def interval_words(figures: Any) -> str:
    """ "95% interval 0.41 to 0.77", or why the bootstrap interval collapsed to one value; "" without one."""
    return metrics.interval_words(_field(figures, "interval"), _field(figures, "n") or 0, _field(figures, "exact"))


@register.filter
def too_few(figures: Any) -> str:
    """ "too few samples to judge (1 of 10 needed)" below metrics.MIN_ITEMS items, else ""."""
    return metrics.too_few(_field(figures, "n"))
