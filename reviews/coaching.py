"""Critique coaching: notice a disagreeing critique too vague to teach the judge anything, and say what would help.

A nudge, not a rule: the review page shows the reason once and saves on the next submit. The judge learns from
what makes an output fail; "wrong" or a copy of the judge's own rationale teaches it nothing.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

MIN_WORDS = 4
# Whole critiques that only restate the label (compared lower-cased, punctuation dropped).
EMPTY_PHRASES = {
    "wrong",
    "bad",
    "bad tone",
    "wrong tone",
    "incorrect",
    "not correct",
    "not good",
    "no good",
    "no",
    "nope",
    "disagree",
    "i disagree",
    "not ok",
    "not okay",
    "poor",
    "bad answer",
    "wrong answer",
    "bad response",
    "fail",
    "pass",
    "meh",
    "terrible",
    "fine",
    "ok",
    "good",
}
SAME_AS_RATIONALE = 0.8  # a critique at least this similar to the judge's rationale repeats it


def vague_reason(critique: str, label: str, judge_value: str, judge_rationale: str = "") -> str | None:
    """Return why a critique disagreeing with the judge is too vague to teach, or None when it is fine (or the
    reviewer agrees with the judge, or wrote nothing: a missing critique is refused elsewhere)."""
    text = " ".join((critique or "").split())
    if not text or not judge_value or label == judge_value:
        return None
    words = re.findall(r"\w+", text.lower())
    if " ".join(words) in EMPTY_PHRASES:
        return f"“{text}” says the judge is wrong, not why."
    if len(words) < MIN_WORDS and len(text) < 40:
        return f"“{text}” is very short."
    rationale = " ".join((judge_rationale or "").split()).lower()
    if rationale and SequenceMatcher(None, text.lower(), rationale).ratio() >= SAME_AS_RATIONALE:
        return "It nearly repeats the judge's own rationale."
    return None
