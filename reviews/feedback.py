"""Saving and deleting expert feedback: atomic, idempotent on double submit, refusing stale edits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from reviews import rendering
from reviews.labels import normalize_label
from reviews.models import MAX_CRITIQUE_CHARS, Feedback, Sample, agreement


class StaleFeedback(Exception):
    """The feedback changed (or vanished) since the reviewer loaded it; nothing was written."""


@dataclass(frozen=True)
class Quote:
    """A passage of an output quoted into a critique: as selected, which output, and its span in the raw text."""

    text: str = ""
    output: str = ""
    start: int | None = None
    end: int | None = None

    def fields(self) -> dict[str, Any]:
        return {"quote_text": self.text, "quote_output": self.output, "quote_start": self.start, "quote_end": self.end}


def saved_quote(feedback: Feedback) -> dict[str, Any] | None:
    """The passage a review quoted, as the export and the API give it (None: no quote). `matches` says whether the
    span still reads as the quote in the sample's output (not once the sample was edited)."""
    if not feedback.quote_text:
        return None
    return {
        "text": feedback.quote_text,
        "output": feedback.quote_output,
        "start": feedback.quote_start,
        "end": feedback.quote_end,
        "matches": feedback.quote_matches(),
    }


def quote(sample: Sample, output: str, text: str) -> Quote:
    """Return the quote of `text` from the sample's output `output` ("" the only one, "a" or "b"), with its span
    in the raw output text (none when the passage is not found there: it is kept as text). No text, no quote."""
    text = (text or "").strip()
    if not text:
        return Quote()
    outputs = ("a", "b") if sample.project.is_pairwise else ("",)
    if output not in outputs:
        raise ValidationError("The quote names an output this sample does not have; select the passage again.")
    if "\x00" in text or len(text) > MAX_CRITIQUE_CHARS:
        raise ValidationError(f"A quote is a passage of the output, at most {MAX_CRITIQUE_CHARS:,} characters.")
    span = rendering.locate(sample.output_by_name(output), text)
    return Quote(text, output, *span) if span else Quote(text, output)


def save_feedback(
    sample: Sample,
    author: User,
    label: str,
    critique: str,
    loaded_revision: int = 0,
    verdict_shown: bool | None = None,
    quoted: Quote | None = None,
) -> tuple[Feedback, bool]:
    """Create or update `author`'s feedback on `sample`; return it and whether it was created.

    `quoted`: the passage of the output quoted in the critique (an empty Quote: none); None keeps the saved one.

    `verdict_shown`: whether the judge's verdict was on screen when the label was chosen (None: unknown); kept
    on an edit that keeps the label.

    `loaded_revision` is the revision the reviewer saw: 0 for a new review. A resubmission of identical content
    (a double click, a retried request) returns the saved feedback unchanged.
    """
    project = sample.project
    label = normalize_label(label, project.label_choices, project.label_kind)
    critique = (critique or "").strip()
    if "\x00" in critique:
        raise ValidationError("The critique contains a NUL character, which cannot be stored; remove it.")
    if len(critique) > MAX_CRITIQUE_CHARS:
        raise ValidationError(
            f"The critique is {len(critique):,} characters long; the limit is {MAX_CRITIQUE_CHARS:,}."
        )
    if sample.judge_value and label != sample.judge_value and not critique:
        raise ValidationError(
            f"You chose {label}, the judge said {sample.judge_value}: say why in a critique, it is what teaches the judge."
        )
    try:
        return _save(sample, author, label, critique, loaded_revision, verdict_shown, quoted)
    except IntegrityError:
        # Two identical requests raced past the existence check: the loser re-reads the winner's row.
        return _save(sample, author, label, critique, loaded_revision, verdict_shown, quoted)


@transaction.atomic
def _save(
    sample: Sample,
    author: User,
    label: str,
    critique: str,
    loaded_revision: int,
    verdict_shown: bool | None,
    quoted: Quote | None,
) -> tuple[Feedback, bool]:
    existing = Feedback.objects.select_for_update().filter(sample=sample, author=author).first()
    if existing is None:
        if loaded_revision:
            raise StaleFeedback("Your feedback on this sample was deleted since you opened it; nothing was saved.")
        with transaction.atomic():
            feedback = Feedback.objects.create(
                project=sample.project,
                sample=sample,
                author=author,
                label=label,
                critique=critique,
                agrees_with_judge=agreement(label, sample.judge_value),
                verdict_shown=verdict_shown,
                **(quoted or Quote()).fields(),
            )
        return feedback, True
    quote_fields = quoted.fields() if quoted is not None else {}
    same_quote = all(getattr(existing, name) == value for name, value in quote_fields.items())
    if existing.label == label and existing.critique == critique and same_quote:
        return existing, False  # same content again: nothing to change
    if loaded_revision != existing.revision:
        raise StaleFeedback(
            "This feedback was changed elsewhere since you opened it (another tab or session); "
            "reload to see the saved version. Nothing was overwritten."
        )
    if existing.label != label:
        existing.verdict_shown = verdict_shown
    existing.label = label
    existing.critique = critique
    existing.agrees_with_judge = agreement(label, sample.judge_value)
    for name, value in quote_fields.items():
        setattr(existing, name, value)
    existing.revision += 1
    existing.save(
        update_fields=[
            "label",
            "critique",
            "agrees_with_judge",
            "verdict_shown",
            "revision",
            "updated_at",
            *quote_fields,
        ]
    )
    return existing, False


@transaction.atomic
def delete_feedback(feedback: Feedback) -> None:
    """Delete feedback; the memory app unlearns it once the transaction commits."""
    feedback.delete()


@transaction.atomic
def undo_save(sample: Sample, author: User, saved_revision: int, previous: dict[str, Any] | None) -> Feedback | None:
    """Undo `author`'s last save on `sample`: delete the feedback it created (`previous` None), or put back the
    label and critique it replaced. Refused (StaleFeedback) when the feedback changed since that save.
    Return the restored feedback, or None when it was deleted."""
    feedback = Feedback.objects.select_for_update().filter(sample=sample, author=author).first()
    if feedback is None or feedback.revision != saved_revision:
        raise StaleFeedback("This feedback changed since that save (another tab or session); nothing was undone.")
    if previous is None:
        feedback.delete()
        return None
    feedback.label = previous["label"]
    feedback.critique = previous["critique"]
    restored = Quote(**previous.get("quote", {})).fields()  # saves remembered before quotes: none
    for name, value in restored.items():
        setattr(feedback, name, value)
    feedback.agrees_with_judge = agreement(feedback.label, sample.judge_value)
    feedback.revision += 1
    feedback.save(update_fields=["label", "critique", "agrees_with_judge", "revision", "updated_at", *restored])
    return feedback
