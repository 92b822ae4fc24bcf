"""Every example whole in the working memory: a long example is shortened part by part, each part keeping its
beginning and end marked as cut, and a pairwise example always carries both outputs (issue 23, item 6)."""

from __future__ import annotations

import re

from memory import shortening, versions
from reviews.labels import LabelKind
from tests.conftest import add_feedback, add_sample

CUT = re.compile(r" … \[cut ([\d,]+) characters\] … ")


def long_text(name: str, length: int) -> str:
    """A text whose beginning and end say which text they belong to."""
    middle = "x" * (length - len(f"START-{name} ") - len(f" END-{name}"))
    return f"START-{name} {middle} END-{name}"


def test_a_text_that_fits_is_left_whole():
    assert shortening.shorten("short text", 10) == "short text"
    assert shortening.shorten_parts(["a" * 10, "b" * 20], 100) == ["a" * 10, "b" * 20]


def test_a_long_text_keeps_its_beginning_and_end_and_says_how_much_was_cut():
    text = long_text("input", 10_000)
    shown = shortening.shorten(text, 1_000)
    assert len(shown) <= 1_000
    assert shown.startswith("START-input") and shown.endswith("END-input")
    (cut,) = CUT.findall(shown)
    assert int(cut.replace(",", "")) == len(text) - (len(shown) - len(CUT.search(shown).group(0)))


def test_short_parts_stay_whole_and_the_long_ones_share_what_is_left():
    assert shortening.shares([100, 5_000, 9_000], 3_100) == [100, 1_500, 1_500]
    assert shortening.shares([100, 1_000, 9_000], 3_100) == [100, 1_000, 2_000]
    assert sum(shortening.shares([7_000, 7_000, 7_000, 50], 6_000)) <= 6_000


def test_a_long_pairwise_example_carries_both_outputs_each_with_its_beginning_and_end(personas):
    project = personas.project
    project.label_kind = LabelKind.PAIRWISE
    project.save(update_fields=["label_kind"])
    sample = add_sample(
        project,
        "pair",
        inputs=long_text("question", 4_000),
        outputs="",
        output_a=long_text("answerA", 9_000),
        output_b=long_text("answerB", 9_000),
    )
    critique = "B answers the question; A talks around it."
    feedback = add_feedback(sample, personas.reviewer, "B", critique)
    other = long_text("second-critique", 3_000)

    example = versions.example(feedback, other_critiques=[other])

    for name, part in (("question", example.inputs), ("answerA", example.output), ("answerB", example.output)):
        assert f"START-{name}" in part and f"END-{name}" in part
    assert example.output.index("END-answerA") < example.output.index("Output B:") < example.output.index("END-answerB")
    assert len(CUT.findall(example.output)) == 2  # each output cut on its own
    assert example.critique == critique  # short: whole
    (shown_other,) = example.other_critiques
    assert shown_other.startswith("START-second-critique") and shown_other.endswith("END-second-critique")
    total = len(example.inputs) + len(example.output) + len(example.critique) + len(shown_other)
    assert total <= versions.EXAMPLE_CHARS + len("Output A:\n\n\nOutput B:\n")


def test_an_example_that_fits_is_shown_whole(personas):
    sample = add_sample(personas.project, "s1", outputs="A plain answer of a few words.")
    feedback = add_feedback(sample, personas.reviewer, "pass", "Fine.")
    example = versions.example(feedback)
    assert (example.inputs, example.output, example.critique) == (
        sample.inputs_text(),
        "A plain answer of a few words.",
        "Fine.",
    )
    assert not CUT.search(example.inputs + example.output)
