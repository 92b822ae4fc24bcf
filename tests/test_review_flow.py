"""The review page's flow without a browser: undo of the last save, critique coaching, preload caching, the
position in the queue, and the styled 403 and 404 pages."""

from __future__ import annotations

import time

import pytest

from reviews import coaching
from reviews.feedback import save_feedback
from reviews.models import Feedback
from reviews.review_views import UNDO_KEY
from tests.conftest import add_feedback, add_sample


def save(client, sample, label, critique="", revision=0, **extra):
    return client.post(
        f"/p/{sample.project.slug}/samples/{sample.pk}/feedback/?filter=todo",
        {"label": label, "critique": critique, "revision": str(revision), **extra},
        HTTP_HX_REQUEST="true",
    )


def undo(client, feedback_id, slug="support-tone"):
    return client.post(f"/p/{slug}/feedback/{feedback_id}/undo/?filter=todo", HTTP_HX_REQUEST="true")


def test_undo_deletes_a_new_review_and_returns_to_its_sample(client, personas):
    first, second = add_sample(personas.project, "s1"), add_sample(personas.project, "s2")
    client.force_login(personas.reviewer)
    response = save(client, first, "pass")
    feedback = Feedback.objects.get()
    assert f'data-sample-id="{second.pk}"' in response.content.decode()
    response = undo(client, feedback.pk)
    assert response.status_code == 200
    assert not Feedback.objects.exists()
    body = response.content.decode()
    assert f'data-sample-id="{first.pk}"' in body and "Undone" in body
    assert response["HX-Push-Url"] == f"/p/support-tone/samples/{first.pk}/?filter=todo&order=plain"
    # Only once: a second undo has nothing to undo.
    assert undo(client, feedback.pk).status_code == 404  # the feedback is gone


def test_undo_restores_an_edited_review(client, personas):
    sample = add_sample(personas.project, "s1")
    feedback = add_feedback(sample, personas.reviewer, "fail", "Curt: it never greets the customer.")
    client.force_login(personas.reviewer)
    save(client, sample, "pass", "", revision=1)
    feedback.refresh_from_db()
    assert (feedback.label, feedback.revision) == ("pass", 2)
    assert undo(client, feedback.pk).status_code == 200
    feedback.refresh_from_db()
    assert (feedback.label, feedback.critique, feedback.revision) == ("fail", "Curt: it never greets the customer.", 3)


def test_undo_is_refused_when_late_or_changed_since_or_not_mine(client, personas):
    first, second = add_sample(personas.project, "s1"), add_sample(personas.project, "s2")
    client.force_login(personas.reviewer)
    save(client, first, "pass")
    feedback = Feedback.objects.get()
    session = client.session
    session[UNDO_KEY] = {**session[UNDO_KEY], "until": time.time() - 1}
    session.save()
    response = undo(client, feedback.pk)
    assert response.status_code == 422 and "Too late to undo" in response.content.decode()
    assert Feedback.objects.filter(pk=feedback.pk).exists()

    save(client, second, "pass")
    later = Feedback.objects.get(sample=second)
    save_feedback(second, personas.reviewer, "fail", "Edited in another tab: it is rude.", loaded_revision=1)
    response = undo(client, later.pk)
    assert response.status_code == 422 and "changed since that save" in response.content.decode()
    assert Feedback.objects.get(pk=later.pk).label == "fail"

    client.force_login(personas.owner)  # someone else's save is never theirs to undo
    response = undo(client, later.pk)
    assert response.status_code == 422 and "no save of yours" in response.content.decode()


def test_an_identical_resave_offers_no_undo(client, personas):
    first, _second = add_sample(personas.project, "s1"), add_sample(personas.project, "s2")
    add_feedback(first, personas.reviewer, "pass")
    client.force_login(personas.reviewer)
    response = client.post(
        f"/p/support-tone/samples/{first.pk}/feedback/?filter=all",
        {"label": "pass", "critique": "", "revision": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "/undo/" not in response.content.decode()


@pytest.mark.parametrize(
    "critique,vague",
    [
        ("wrong", True),
        ("Bad tone.", True),
        ("too rude", True),
        ("The reply looks fine and polite.", True),  # the judge's rationale, nearly word for word
        ("It promises a refund date it cannot know.", False),
        ("x" * 60, False),  # long junk is left to the length and label checks
    ],
)
def test_coaching_spots_vague_critiques(critique, vague):
    reason = coaching.vague_reason(critique, "fail", "pass", "The reply looks fine and polite!")
    assert (reason is not None) is vague, reason


def test_coaching_is_silent_when_agreeing_or_without_a_verdict():
    assert coaching.vague_reason("ok", "pass", "pass") is None
    assert coaching.vague_reason("bad", "fail", "") is None


def test_a_vague_disagreement_is_nudged_once_then_saved(client, personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    client.force_login(personas.reviewer)
    response = save(client, sample, "fail", "wrong")
    assert response.status_code == 422
    body = response.content.decode()
    assert 'id="coaching"' in body and "“wrong” says the judge is wrong, not why." in body
    assert '<input type="hidden" name="coached" value="1">' in body and "Save anyway" in body
    assert 'id="critique" name="critique" rows="3" maxlength="5000">wrong</textarea>' in body  # kept as typed
    assert not Feedback.objects.exists()
    response = save(client, sample, "fail", "wrong", coached="1")
    assert response.status_code == 200
    assert Feedback.objects.get().critique == "wrong"


def test_a_preloaded_item_may_be_cached_and_its_url_changes_with_any_save(client, personas):
    first, second = add_sample(personas.project, "s1"), add_sample(personas.project, "s2")
    client.force_login(personas.reviewer)
    page = client.get(f"/p/support-tone/samples/{first.pk}/").content.decode()
    fetch = page.split('hx-get="')[-1].split('"')[0].replace("&amp;", "&")
    assert fetch.startswith(f"/p/support-tone/samples/{second.pk}/?filter=todo&order=plain&v=")
    response = client.get(fetch, HTTP_HX_REQUEST="true")
    assert "private" in response["Cache-Control"] and "max-age=60" in response["Cache-Control"]
    assert "HX-Request" in response["Vary"]
    assert "Cache-Control" not in client.get(f"/p/support-tone/samples/{second.pk}/")  # the page itself: never
    add_feedback(second, personas.owner, "pass")  # anyone's save changes every fetch URL
    again = client.get(f"/p/support-tone/samples/{first.pk}/").content.decode()
    assert again.split('hx-get="')[-1].split('"')[0].replace("&amp;", "&") != fetch


def test_the_position_counts_the_queue(client, personas):
    samples = [add_sample(personas.project, f"s{n}") for n in range(4)]
    add_feedback(samples[0], personas.reviewer, "pass")
    client.force_login(personas.reviewer)
    page = client.get(f"/p/support-tone/samples/{samples[2].pk}/").content.decode()
    assert "<strong>2</strong> of 3 in “Needs my review”" in page
    page = client.get(f"/p/support-tone/samples/{samples[0].pk}/").content.decode()
    assert "3 left in “Needs my review”" in page  # reviewed already: not in the queue any more
    assert f">s{0}</h1>" in page


def test_403_and_404_pages_are_styled_and_say_what_is_needed(client, personas):
    client.force_login(personas.viewer)
    response = client.get("/p/support-tone/import/")
    assert response.status_code == 403
    body = response.content.decode()
    assert 'id="error-page"' in body and "This needs the owner role in this project." in body
    assert 'rel="stylesheet"' in body and "Ask one of the project's owners" in body
    client.force_login(personas.outsider)
    response = client.get("/p/support-tone/")
    assert response.status_code == 404
    body = response.content.decode()
    assert 'id="error-page"' in body and "No such project." in body and "ask one of the project" in body
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and "This page does not exist." in response.content.decode()


def test_queue_cells_read_as_text_not_json():
    from reviews.templatetags.review_tags import one_line

    assert one_line({"question": "Where is\n my refund?"}) == "Where is my refund?"
    assert one_line({"q": "Hi", "lang": "en", "n": 3}) == "q: Hi · lang: en · n: 3"
    assert one_line("x" * 200, 20) == "x" * 19 + "…"
    assert one_line({"nested": {"a": 1}}) == '{"a": 1}'
    assert one_line(None) == ""
