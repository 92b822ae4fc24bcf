"""Label schemas: what a verdict may be in a project, and how a raw value is checked against it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


class LabelKind(models.TextChoices):
    PASS_FAIL = "pass_fail", "Pass / fail"
    CATEGORICAL = "categorical", "Categories"
    NUMERIC = "numeric", "Numeric scale"
    PAIRWISE = "pairwise", "Pairwise (A or B)"


PASS_FAIL_CHOICES = ["pass", "fail"]
PAIRWISE_CHOICES = ["A", "B"]
MAX_SCALE_STEPS = 10  # digit keys pick labels, and a scale longer than that is a number, not a label
MAX_CATEGORIES = 10  # one digit key each: 1..9, then 0


def label_choices(kind: str, categories: list[str], scale_min: int | None, scale_max: int | None) -> list[str]:
    """Return the allowed label values, in display order."""
    if kind == LabelKind.PASS_FAIL:
        return list(PASS_FAIL_CHOICES)
    if kind == LabelKind.PAIRWISE:
        return list(PAIRWISE_CHOICES)
    if kind == LabelKind.NUMERIC:
        return [str(n) for n in range(scale_min or 0, (scale_max or 0) + 1)]
    return list(categories)


def check_schema(kind: str, categories: list[str], scale_min: int | None, scale_max: int | None) -> None:
    """Raise ValidationError when a label schema is unusable."""
    if kind == LabelKind.CATEGORICAL:
        if len(categories) < 2:
            raise ValidationError("A category schema needs at least two categories.")
        if len(categories) > MAX_CATEGORIES:
            raise ValidationError(
                f"A category schema may have at most {MAX_CATEGORIES} categories (one digit key each)."
            )
        if len(set(c.casefold() for c in categories)) != len(categories):
            raise ValidationError("Categories must be distinct.")
        if any(not c or len(c) > 64 for c in categories):
            raise ValidationError("Each category must be 1 to 64 characters long.")
    if kind == LabelKind.NUMERIC:
        if scale_min is None or scale_max is None:
            raise ValidationError("A numeric scale needs a minimum and a maximum.")
        if not scale_min < scale_max:
            raise ValidationError("The scale's minimum must be below its maximum.")
        if scale_max - scale_min + 1 > MAX_SCALE_STEPS:
            raise ValidationError(f"A numeric scale may have at most {MAX_SCALE_STEPS} steps.")


def normalize_label(value: object, choices: list[str], kind: str) -> str:
    """Return `value` as one of `choices`, or raise ValidationError saying what is allowed.

    Matching forgives case and surrounding space ("PASS", " b "), and numbers written as 4.0.
    """
    text = str(value).strip() if value is not None else ""
    if not text:
        raise ValidationError("The label is empty.")
    if kind == LabelKind.NUMERIC:
        try:
            number = float(text)
        except ValueError:
            raise ValidationError(  # noqa: B904 - the message names the value; the ValueError adds nothing
                f"{text!r} is not a number; expected a whole number from {choices[0]} to {choices[-1]}."
            )
        if not number.is_integer() or str(int(number)) not in choices:
            raise ValidationError(
                f"{text!r} is outside the scale; expected a whole number from {choices[0]} to {choices[-1]}."
            )
        return str(int(number))
    for choice in choices:
        if choice.casefold() == text.casefold():
            return choice
    raise ValidationError(f"{text!r} is not a label of this project; expected one of: {', '.join(choices)}.")
