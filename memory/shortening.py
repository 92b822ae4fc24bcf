"""Shortening an example to fit the working memory without losing any of its parts.

An example is its parts: the input, each output (both of a pairwise sample), the critique and the other
reviews' critiques. When they do not fit the budget together, each keeps a share of it: the short ones whole,
the budget they leave shared by the long ones; a long part keeps its beginning and its end around a mark that
says how much was cut, so a reader (the model) knows the part goes on.
"""

from __future__ import annotations

CUT_MARK = " … [cut {:,} characters] … "


def shorten(text: str, limit: int) -> str:
    """Return `text` whole when it fits in `limit` characters, else its beginning and end around a cut mark
    (within `limit`, unless the limit is smaller than the mark itself)."""
    if len(text) <= limit:
        return text
    kept = max(0, limit - len(CUT_MARK.format(len(text))))
    head = (kept + 1) // 2
    tail = kept - head
    return text[:head] + CUT_MARK.format(len(text) - kept) + (text[len(text) - tail :] if tail else "")


def shares(lengths: list[int], budget: int) -> list[int]:
    """Return how many characters each part may keep: every part that fits in an equal share keeps all of it,
    and what it leaves over goes to the longer ones, equally."""
    allowed = [0] * len(lengths)
    left, parts = budget, len(lengths)
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        allowed[index] = min(lengths[index], left // parts)
        left -= allowed[index]
        parts -= 1
    return allowed


def shorten_parts(texts: list[str], budget: int) -> list[str]:
    """Return the texts shortened so that together they take about `budget` characters, each with its share."""
    return [shorten(text, share) for text, share in zip(texts, shares([len(t) for t in texts], budget))]
