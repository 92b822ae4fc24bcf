"""A passage of the output quoted in a critique: stored with its span, checked, kept, undone, shown when stale."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from reviews.feedback import Quote, quote, save_feedback, undo_save
from reviews.models import MAX_CRITIQUE_CHARS, Feedback
from reviews.projects import create_project
from tests.conftest import add_sample

pytestmark = pytest.mark.django_db

OUTPUT = "Hello.\n\nIt *promises* a refund by Friday."
CRITIQUE = "It promises a date it cannot know; it should say it will check."


def save_url(sample) -> str:
    return f"/p/{sample.project.slug}/samples/{sample.pk}/feedback/"


def test_a_quote_posted_with_the_feedback_is_stored_with_its_span(client, personas):
    sample = add_sample(personas.project, "q1", outputs=OUTPUT)
    client.force_login(personas.reviewer)
    data = {
        "label": "fail",
        "critique": CRITIQUE,
        "revision": "0",
        "quote_text": "promises a refund",
        "quote_output": "",
    }
    assert client.post(save_url(sample), data).status_code == 302
    feedback = Feedback.objects.get()
    assert (feedback.quote_text, feedback.quote_output) == ("promises a refund", "")
    assert OUTPUT[feedback.quote_start : feedback.quote_end] == "promises* a refund"
    assert feedback.quote_matches()


def test_a_passage_not_in_the_output_is_kept_as_text_without_a_span(personas):
    sample = add_sample(personas.project, "q2", outputs=OUTPUT)
    feedback, _ = save_feedback(sample, personas.reviewer, "fail", CRITIQUE, quoted=quote(sample, "", "never said"))
    assert feedback.quote_text == "never said" and feedback.quote_start is None and not feedback.quote_matches()


@pytest.mark.parametrize(
    "output, text, message",
    [
        ("a", "promises", "The quote names an output this sample does not have"),
        ("x", "promises", "The quote names an output this sample does not have"),
        ("", "promises\x00", "Null characters are not allowed."),
        ("", "x" * (MAX_CRITIQUE_CHARS + 1), "A quote is a passage of the output, at most 5,000 characters."),
    ],
)
def test_a_bad_quote_is_refused_with_a_clear_message_and_nothing_saved(client, personas, output, text, message):
    sample = add_sample(personas.project, "q3", outputs=OUTPUT)
    client.force_login(personas.reviewer)
    data = {"label": "fail", "critique": CRITIQUE, "revision": "0", "quote_text": text, "quote_output": output}
    response = client.post(save_url(sample), data)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Feedback.objects.exists()


def test_a_pairwise_quote_names_its_output(personas):
    project = create_project(personas.owner, name="Pairs", criterion="Which?", label_kind="pairwise")
    sample = add_sample(project, "p1", judge_value="A", outputs="", output_a="Yes today.", output_b="No refund today.")
    quoted = quote(sample, "b", "refund today")
    assert (quoted.output, sample.output_b[quoted.start : quoted.end]) == ("b", "refund today")
    with pytest.raises(ValidationError):
        quote(sample, "", "refund today")


def test_an_edit_that_only_changes_the_quote_is_a_new_revision_and_undo_puts_the_old_quote_back(personas):
    sample = add_sample(personas.project, "q4", outputs=OUTPUT)
    first, _ = save_feedback(sample, personas.reviewer, "fail", CRITIQUE, quoted=quote(sample, "", "promises"))
    previous = {
        "label": "fail",
        "critique": CRITIQUE,
        "quote": {"text": "promises", "output": "", "start": first.quote_start, "end": first.quote_end},
    }
    second, created = save_feedback(
        sample, personas.reviewer, "fail", CRITIQUE, 1, quoted=quote(sample, "", "by Friday")
    )
    assert not created and second.revision == 2 and second.quote_text == "by Friday"
    again, _ = save_feedback(sample, personas.reviewer, "fail", CRITIQUE, 2, quoted=quote(sample, "", "by Friday"))
    assert again.revision == 2  # the same content again: nothing changed
    kept, _ = save_feedback(sample, personas.reviewer, "fail", CRITIQUE + " Really.", 2)  # the API: no quote given
    assert kept.quote_text == "by Friday"
    undone = undo_save(sample, personas.reviewer, kept.revision, previous)
    assert undone is not None and undone.quote_text == "promises" and undone.quote_matches()
    cleared, _ = save_feedback(sample, personas.reviewer, "fail", CRITIQUE, undone.revision, quoted=Quote())
    assert cleared.quote_text == "" and cleared.quote_start is None


def test_a_stale_quote_shows_as_text_in_the_episodic_browser_and_not_highlighted_on_the_review_page(client, personas):
    sample = add_sample(personas.project, "q5", outputs=OUTPUT)
    save_feedback(sample, personas.reviewer, "fail", CRITIQUE, quoted=quote(sample, "", "a refund by Friday"))
    client.force_login(personas.reviewer)
    page = client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/?filter=mine").content.decode()
    assert '<b class="quote">a refund by Friday</b>' in page
    sample.outputs = "Hello.\n\nA refund comes once we have checked."
    sample.save(update_fields=["outputs"])
    page = client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/?filter=mine").content.decode()
    assert 'class="quote"' not in page and '<q id="quote-shown">a refund by Friday</q>' in page
    client.force_login(personas.owner)
    browser = client.get(f"/p/{personas.project.slug}/memory/episodic/").content.decode()
    assert '<q>a refund by Friday</q> <span class="muted" data-quote-stale>' in browser
