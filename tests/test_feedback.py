"""Saving, editing and deleting feedback: the rules, double submits and stale edits (with real threads against
the real database), and the save/delete endpoints with their precise messages and statuses."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from reviews.feedback import StaleFeedback, delete_feedback, save_feedback
from reviews.models import MAX_CRITIQUE_CHARS, Feedback, Membership, Role, Sample
from reviews.projects import create_project
from tests.conftest import add_sample, make_user

# The rules -------------------------------------------------------------------------------------------------


def test_agreeing_needs_no_critique_and_records_everything(personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    feedback, created = save_feedback(sample, personas.reviewer, "PASS", "")
    assert created
    feedback.refresh_from_db()
    assert (feedback.author, feedback.label, feedback.critique, feedback.agrees_with_judge, feedback.revision) == (
        personas.reviewer,
        "pass",
        "",
        True,
        1,
    )
    assert feedback.project == personas.project and feedback.created_at and feedback.updated_at


def test_disagreeing_needs_a_critique(personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    with pytest.raises(ValidationError) as info:
        save_feedback(sample, personas.reviewer, "fail", "   ")
    assert info.value.messages == [
        "You chose fail, the judge said pass: say why in a critique, it is what teaches the judge."
    ]
    feedback, _ = save_feedback(sample, personas.reviewer, "fail", "  Too curt for a refund request.\n")
    assert (feedback.critique, feedback.agrees_with_judge) == ("Too curt for a refund request.", False)


def test_without_a_verdict_there_is_nothing_to_agree_with(personas):
    sample = add_sample(personas.project, "s1", judge_value="")
    feedback, _ = save_feedback(sample, personas.reviewer, "fail", "")
    assert feedback.agrees_with_judge is None


@pytest.mark.parametrize(
    "label,critique,message",
    [
        ("maybe", "", "'maybe' is not a label of this project; expected one of: pass, fail."),
        ("", "", "The label is empty."),
        (
            "fail",
            "x" * (MAX_CRITIQUE_CHARS + 1),
            f"The critique is {MAX_CRITIQUE_CHARS + 1:,} characters long; the limit is {MAX_CRITIQUE_CHARS:,}.",
        ),
        ("fail", "nul\x00byte", "The critique contains a NUL character, which cannot be stored; remove it."),
    ],
)
def test_bad_feedback_is_refused_precisely(personas, label, critique, message):
    sample = add_sample(personas.project, "s1")
    with pytest.raises(ValidationError) as info:
        save_feedback(sample, personas.reviewer, label, critique)
    assert info.value.messages == [message]
    assert not Feedback.objects.exists()


def test_numeric_labels(personas):
    project = create_project(
        personas.owner, name="Scores", criterion="c", label_kind="numeric", scale_min=1, scale_max=5
    )
    sample = add_sample(project, "n1", judge_value="3")
    assert save_feedback(sample, personas.owner, "3.0", "")[0].label == "3"
    with pytest.raises(ValidationError, match="outside the scale"):
        save_feedback(sample, personas.owner, "6", "Too high")


def test_editing_bumps_the_revision_and_keeps_created_at(personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    first, _ = save_feedback(sample, personas.reviewer, "fail", "Curt.")
    time.sleep(0.01)
    edited, created = save_feedback(
        sample, personas.reviewer, "fail", "Curt, and it blames the customer.", loaded_revision=1
    )
    assert not created
    edited.refresh_from_db()
    assert (edited.pk, edited.revision, edited.critique) == (first.pk, 2, "Curt, and it blames the customer.")
    assert edited.created_at == first.created_at and edited.updated_at > first.updated_at
    agreed, _ = save_feedback(sample, personas.reviewer, "pass", "", loaded_revision=2)
    assert (agreed.revision, agreed.agrees_with_judge) == (3, True)


def test_a_double_submit_is_one_record_and_no_new_revision(personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    save_feedback(sample, personas.reviewer, "fail", "Curt.")
    again, created = save_feedback(sample, personas.reviewer, "fail", "Curt.")  # the same form, posted twice
    assert not created and again.revision == 1
    edited, _ = save_feedback(sample, personas.reviewer, "fail", "Curt!", loaded_revision=1)
    twice, _ = save_feedback(sample, personas.reviewer, "fail", "Curt!", loaded_revision=1)  # the edit posted twice
    assert edited.revision == twice.revision == 2
    assert Feedback.objects.count() == 1


def test_a_stale_edit_is_refused_not_overwritten(personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    save_feedback(sample, personas.reviewer, "fail", "First tab.")
    save_feedback(sample, personas.reviewer, "fail", "Second tab edited it.", loaded_revision=1)
    with pytest.raises(StaleFeedback, match="changed elsewhere since you opened it"):
        save_feedback(sample, personas.reviewer, "pass", "First tab again, from revision 1.", loaded_revision=1)
    with pytest.raises(StaleFeedback):  # a second tab that opened the sample before any feedback existed
        save_feedback(sample, personas.reviewer, "pass", "")
    assert Feedback.objects.get().critique == "Second tab edited it."


def test_an_edit_of_deleted_feedback_is_refused(personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    feedback, _ = save_feedback(sample, personas.reviewer, "fail", "Curt.")
    delete_feedback(feedback)
    with pytest.raises(StaleFeedback, match="deleted since you opened it; nothing was saved"):
        save_feedback(sample, personas.reviewer, "fail", "Edited.", loaded_revision=1)
    assert not Feedback.objects.exists()


def test_several_reviewers_each_review_the_same_sample(personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    save_feedback(sample, personas.reviewer, "fail", "Curt.")
    save_feedback(sample, personas.owner, "pass", "")
    assert sorted(Feedback.objects.filter(sample=sample).values_list("author__username", flat=True)) == [
        "olivia",
        "rafael",
    ]


# Real threads against the real database --------------------------------------------------------------------


def in_threads(count: int, target) -> list[object]:
    """Run target(index) in `count` threads released together; return each result or exception."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as error:  # noqa: BLE001 - returned to the test, which asserts on it
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a save hung"
    return results


@pytest.fixture
def race(transactional_db):
    owner, reviewer = make_user("olivia"), make_user("rafael")
    project = create_project(owner, name="Race", criterion="c", label_kind="pass_fail")
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    sample = add_sample(project, "s1", judge_value="pass")
    return owner, reviewer, sample


def test_simultaneous_identical_submits_create_one_record(race):
    _, reviewer, sample = race
    results = in_threads(6, lambda i: save_feedback(Sample.objects.get(pk=sample.pk), reviewer, "fail", "Curt."))
    assert all(isinstance(r, tuple) for r in results), results
    assert sum(1 for _, created in results if created) == 1
    assert len({feedback.pk for feedback, _ in results}) == 1
    assert Feedback.objects.filter(sample=sample).count() == 1
    assert Feedback.objects.get().revision == 1


def test_simultaneous_different_first_saves_one_wins_the_other_is_told(race):
    _, reviewer, sample = race
    results = in_threads(2, lambda i: save_feedback(Sample.objects.get(pk=sample.pk), reviewer, "fail", f"Tab {i}."))
    saved = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, StaleFeedback)]
    assert (len(saved), len(refused)) == (1, 1), results
    assert Feedback.objects.get().critique == saved[0][0].critique


def test_simultaneous_edits_from_one_loaded_revision_one_wins(race):
    _, reviewer, sample = race
    save_feedback(sample, reviewer, "fail", "Original.")
    results = in_threads(
        4, lambda i: save_feedback(Sample.objects.get(pk=sample.pk), reviewer, "fail", f"Edit {i}.", loaded_revision=1)
    )
    saved = [r for r in results if isinstance(r, tuple)]
    refused = [r for r in results if isinstance(r, StaleFeedback)]
    assert (len(saved), len(refused)) == (1, 3), results
    stored = Feedback.objects.get()
    assert (stored.revision, stored.critique) == (2, saved[0][0].critique)


def test_simultaneous_reviewers_each_get_their_record(race):
    owner, reviewer, sample = race
    users = [owner, reviewer]
    results = in_threads(2, lambda i: save_feedback(Sample.objects.get(pk=sample.pk), users[i], "fail", f"By {i}."))
    assert all(isinstance(r, tuple) and r[1] for r in results), results
    assert Feedback.objects.filter(sample=sample).count() == 2


def test_simultaneous_double_posts_through_the_view_create_one_record(race, live_server):
    """Two requests with the same form through the whole stack (middleware, CSRF, sessions), on two threads."""
    from django.test import Client

    _, reviewer, sample = race
    url = f"/p/{sample.project.slug}/samples/{sample.pk}/feedback/"

    def post(i: int):
        client = Client()
        client.force_login(reviewer)
        return client.post(
            url,
            {"label": "fail", "critique": "Curt: it never greets the customer.", "revision": "0"},
            HTTP_HX_REQUEST="true",
        ).status_code

    assert in_threads(3, post) == [200, 200, 200]
    assert Feedback.objects.filter(sample=sample).count() == 1


# The endpoints ---------------------------------------------------------------------------------------------


def save_url(sample) -> str:
    return f"/p/{sample.project.slug}/samples/{sample.pk}/feedback/"


def test_saving_through_htmx_returns_the_item_and_the_saved_event(client, personas):
    first = add_sample(personas.project, "s1", judge_value="pass")
    second = add_sample(personas.project, "s2")
    client.force_login(personas.reviewer)
    response = client.post(save_url(first), {"label": "pass", "critique": "", "revision": "0"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Trigger-After-Swap"] == (
        f'{{"feedbackSaved": {{"sampleId": {first.pk}, "feedbackId": {Feedback.objects.get().pk}, "created": true}}}}'
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<article id="review-item"')  # the partial only
    # The save answers with the next item, its URL pushed, and the cue that the first was saved.
    assert f'data-sample-id="{second.pk}"' in body
    assert response["HX-Push-Url"] == f"/p/{personas.project.slug}/samples/{second.pk}/?filter=todo&order=plain"
    assert "Saved your review of <strong>s1</strong>" in body
    assert f"/feedback/{Feedback.objects.get().pk}/undo/" in body


def test_saving_without_htmx_redirects_to_the_next_sample_keeping_the_filters(client, personas):
    first = add_sample(personas.project, "s1", judge_value="pass")
    add_sample(personas.project, "s2", judge_value="pass")
    third = add_sample(personas.project, "s3", judge_value="fail")
    personas.project.judge_blind = False  # "judge said" filters only where the verdict is shown from the start
    personas.project.save(update_fields=["judge_blind"])
    client.force_login(personas.reviewer)
    response = client.post(save_url(first) + "?judge=fail&filter=todo", {"label": "pass"})
    assert response.status_code == 302
    # s2 follows s1 in the project, but only s3 matches the reviewer's filter (the judge said fail).
    assert response["Location"] == f"/p/{personas.project.slug}/samples/{third.pk}/?filter=todo&judge=fail&order=plain"


def test_the_posted_label_never_becomes_a_queue_filter(client, personas):
    """Regression: the review context read the queue's filters from the POST body, whose `label` is the feedback's."""
    first = add_sample(personas.project, "s1", judge_value="pass")
    second = add_sample(personas.project, "s2")
    client.force_login(personas.reviewer)
    response = client.post(save_url(first), {"label": "pass", "revision": "0"}, HTTP_HX_REQUEST="true")
    assert response["HX-Push-Url"] == f"/p/{personas.project.slug}/samples/{second.pk}/?filter=todo&order=plain"
    response = client.post(save_url(second), {"label": "fail", "critique": "Rude: it blames the customer."})
    # nothing left: back to the queue
    assert response["Location"] == f"/p/{personas.project.slug}/queue/?filter=todo&order=plain"


@pytest.mark.parametrize(
    "data,message",
    [
        ({"critique": "x"}, "Pick a label first (the digit keys pick one, a agrees with the judge)."),
        (
            {"label": "fail", "critique": ""},
            "You chose fail, the judge said pass: say why in a critique, it is what teaches the judge.",
        ),
        ({"label": "great"}, "&#x27;great&#x27; is not a label of this project; expected one of: pass, fail."),
        (
            {"label": "fail", "critique": "x" * (MAX_CRITIQUE_CHARS + 7)},
            f"The critique is {MAX_CRITIQUE_CHARS + 7:,} characters long; the limit is {MAX_CRITIQUE_CHARS:,}.",
        ),
        ({"label": "fail", "critique": "a\x00b"}, "Null characters are not allowed."),
        ({"label": "pass", "revision": "abc"}, "The form is out of date: reload the page."),
    ],
)
def test_bad_posts_get_422_with_a_precise_message_and_keep_what_was_typed(client, personas, data, message):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    client.force_login(personas.reviewer)
    response = client.post(save_url(sample), data, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    body = response.content.decode()
    assert f'<p class="error" role="alert" id="feedback-error">{message}</p>' in body
    if data.get("critique") == "x":
        assert ">x</textarea>" in body
    assert not Feedback.objects.exists()


def test_a_stale_edit_through_the_view_is_refused_with_a_message(client, personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    save_feedback(sample, personas.reviewer, "fail", "Tab one.")
    save_feedback(sample, personas.reviewer, "fail", "Tab two.", loaded_revision=1)
    client.force_login(personas.reviewer)
    response = client.post(
        save_url(sample), {"label": "pass", "critique": "Stale tab.", "revision": "1"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert "This feedback was changed elsewhere since you opened it" in response.content.decode()
    assert Feedback.objects.get().critique == "Tab two."


def test_who_may_save(client, personas):
    sample = add_sample(personas.project, "s1")
    other = add_sample(personas.other, "theirs")
    client.force_login(personas.viewer)
    assert client.post(save_url(sample), {"label": "pass"}).status_code == 403
    client.force_login(personas.outsider)
    assert client.post(save_url(sample), {"label": "pass"}).status_code == 404
    client.force_login(personas.reviewer)
    assert client.post(f"/p/{personas.project.slug}/samples/{other.pk}/feedback/", {"label": "pass"}).status_code == 404
    assert client.post(f"/p/{personas.project.slug}/samples/999999/feedback/", {"label": "pass"}).status_code == 404
    assert not Feedback.objects.exists()


def test_saving_needs_the_csrf_token(personas):
    from django.test import Client

    sample = add_sample(personas.project, "s1")
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.reviewer)
    assert client.post(save_url(sample), {"label": "pass"}).status_code == 403
    assert not Feedback.objects.exists()


def delete_url(feedback) -> str:
    return f"/p/{feedback.project.slug}/feedback/{feedback.pk}/delete/"


def test_reviewers_delete_their_own_feedback_owners_anyones(client, personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    mine, _ = save_feedback(sample, personas.reviewer, "pass", "")
    owners, _ = save_feedback(sample, personas.owner, "fail", "Curt.")
    client.force_login(personas.reviewer)
    response = client.post(delete_url(owners))
    assert response.status_code == 403
    response = client.post(delete_url(mine) + "?filter=mine")
    assert (
        response.status_code == 302
        and response["Location"] == f"/p/{personas.project.slug}/samples/{sample.pk}/?filter=mine"
    )
    assert list(Feedback.objects.values_list("author__username", flat=True)) == ["olivia"]
    again, _ = save_feedback(sample, personas.reviewer, "pass", "")
    client.force_login(personas.owner)
    assert client.post(delete_url(again)).status_code == 302
    assert client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/", follow=True).status_code == 200
    assert list(Feedback.objects.values_list("author__username", flat=True)) == ["olivia"]
    client.force_login(personas.viewer)
    assert client.post(delete_url(owners)).status_code == 403
    assert Feedback.objects.filter(pk=owners.pk).exists()


def test_a_reviewer_demoted_to_viewer_can_no_longer_edit(client, personas):
    sample = add_sample(personas.project, "s1", judge_value="pass")
    save_feedback(sample, personas.reviewer, "pass", "")
    Membership.objects.filter(user=personas.reviewer, project=personas.project).update(role=Role.VIEWER)
    client.force_login(personas.reviewer)
    assert client.post(save_url(sample), {"label": "fail", "critique": "x", "revision": "1"}).status_code == 403
    body = client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/").content.decode()
    assert 'id="feedback-form"' not in body
