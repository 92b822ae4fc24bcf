"""Conflicts and adjudication: deciding changes both memories as unalign would, undoing restores them; the
permission to decide, bad input, and two adjudicators racing for one conflict."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from memory import episodic, semantic, sync
from memory.models import PrincipleSource
from reviews import adjudication, team
from reviews.models import Decision, Feedback, Membership, Role
from tests.conftest import add_feedback, add_sample, make_user

WARM = "The reply is warm, apologises for the delay and thanks the customer for their patience throughout."
DODGES = "The reply never answers the refund question and dodges what the customer actually asked about here."
REASON = "Politeness cannot make up for ignoring the refund question: a reply that dodges the request fails."
OTHER = "Signing off with a cheerful emoji to a customer whose parcel was lost ignores how upset they are."


@pytest.fixture
def conflict(personas):
    """s1: rafael says pass (warm), rhea says fail (dodges). s2: one review, unrelated."""
    rhea = make_user("rhea")
    Membership.objects.create(project=personas.project, user=rhea, role=Role.REVIEWER)
    s1, s2 = add_sample(personas.project, "s1"), add_sample(personas.project, "s2", judge_value="fail")
    warm = add_feedback(s1, personas.reviewer, "pass", WARM)
    dodges = add_feedback(s1, rhea, "fail", DODGES)
    other = add_feedback(s2, rhea, "fail", OTHER)
    return s1, warm, dodges, other, rhea


def learn(project) -> tuple[set[int], dict[int, set[int]]]:
    """Bring both memories up to date (as the tasks would); return the episodic ids and, per feedback id, the
    active principles it is a source of."""
    sync.repair(project)
    semantic.regenerate(project, force=True)
    links: dict[int, set[int]] = {}
    for feedback_id, principle_id in PrincipleSource.objects.filter(
        principle__project=project, principle__retired=False, feedback__isnull=False
    ).values_list("feedback_id", "principle_id"):
        links.setdefault(feedback_id, set()).add(principle_id)
    return set(episodic.entries(project.pk)), links


def test_a_decision_unaligns_the_overruled_feedback_and_teaches_its_reason_and_undo_restores(personas, conflict):
    s1, warm, dodges, other, _ = conflict
    project = personas.project
    before_ids, before_links = learn(project)
    assert before_ids == {warm.pk, dodges.pk, other.pk}
    assert warm.pk in before_links and dodges.pk in before_links  # each critique taught a principle
    warm_principles = before_links[warm.pk]

    decision = adjudication.decide(s1, "fail", REASON, personas.owner)
    ids, links = learn(project)
    assert ids == {dodges.pk, other.pk, decision.feedback_id}  # overruled left, the decision came in
    assert warm.pk not in links  # nothing the principles hold comes from the overruled critique
    assert decision.feedback_id in links  # the reason teaches
    assert all(p not in {q for qs in links.values() for q in qs} for p in warm_principles)  # retired
    assert Feedback.objects.filter(pk=warm.pk).exists()  # the review itself stays, for the team's figures
    assert team.ratings(project)[s1.pk] == {"rafael": "pass", "rhea": "fail"}
    assert decision.feedback.critique == REASON and decision.feedback.author.username == "(team decision)"

    adjudication.undo(project, decision.pk)
    ids, links = learn(project)
    assert ids == before_ids  # the same episodic entries as before the decision
    assert warm.pk in links and dodges.pk in links and other.pk in links  # learned again
    assert not Feedback.objects.filter(pk=decision.feedback_id).exists()
    assert not Decision.objects.exists()


def test_an_overruled_review_edited_later_stays_out_until_it_agrees(personas, conflict):
    s1, warm, dodges, other, _ = conflict
    adjudication.decide(s1, "fail", REASON, personas.owner)
    from reviews.feedback import save_feedback

    save_feedback(s1, personas.reviewer, "pass", WARM + " Really.", warm.revision)  # still overruled
    ids, links = learn(personas.project)
    assert warm.pk not in ids and warm.pk not in links
    save_feedback(s1, personas.reviewer, "fail", DODGES + " I agree now.", warm.revision + 1)
    ids, _ = learn(personas.project)
    assert warm.pk in ids  # it agrees with the decision: the memory learns it


def test_bad_decisions_are_refused_with_the_reason(personas, conflict):
    s1, warm, dodges, other, _ = conflict
    cases = [
        (s1, "maybe", REASON, "not a label"),
        (s1, "fail", "   ", "Say why"),
        (other.sample, "fail", REASON, "agree: there is nothing to decide"),
    ]
    for sample, label, reason, message in cases:
        with pytest.raises(ValidationError, match=message):
            adjudication.decide(sample, label, reason, personas.owner)
    assert not Decision.objects.exists() and not Feedback.objects.filter(author__username="(team decision)").exists()
    adjudication.decide(s1, "pass", REASON, personas.owner)
    with pytest.raises(adjudication.AlreadyDecided, match="olivia decided “pass” for this sample first"):
        adjudication.decide(s1, "fail", REASON, personas.owner)


def test_owners_and_flagged_reviewers_decide_others_do_not(client, personas, conflict):
    s1, warm, dodges, other, rhea = conflict
    url = f"/p/{personas.project.slug}/samples/{s1.pk}/decide/"
    client.force_login(personas.reviewer)
    assert client.post(url, {"label": "fail", "reason": REASON}).status_code == 403
    page = client.get(f"/p/{personas.project.slug}/conflicts/").content.decode()
    assert 'data-sample="s1"' in page and "Decide</button>" not in page  # rafael reviewed s1: he sees it
    client.force_login(personas.owner)
    membership = Membership.objects.get(project=personas.project, user=personas.reviewer)
    client.post(f"/p/{personas.project.slug}/members/{membership.pk}/adjudicator/", {"on": "1"})
    assert Membership.objects.get(pk=membership.pk).adjudicator
    # An adjudicator who reviewed the sample may decide it, even against their own label.
    client.force_login(personas.reviewer)
    response = client.post(url, {"label": "fail", "reason": REASON}, follow=True)
    assert "“fail” decided" in response.content.decode()
    decision = Decision.objects.get()
    assert decision.decided_by == personas.reviewer
    empty = client.get(f"/p/{personas.project.slug}/conflicts/").content.decode()
    assert '<span data-stat="open-conflicts">0</span>' in empty and 'id="decisions"' in empty
    client.post(f"/p/{personas.project.slug}/decisions/{decision.pk}/undo/")
    assert not Decision.objects.exists()
    again = client.post(f"/p/{personas.project.slug}/decisions/{decision.pk}/undo/")
    assert again.status_code == 404
    # Deleting the team's feedback on the review page undoes the decision as well.
    client.force_login(personas.owner)
    decision = adjudication.decide(s1, "pass", REASON, personas.owner)
    client.post(f"/p/{personas.project.slug}/feedback/{decision.feedback_id}/delete/")
    assert not Decision.objects.exists() and adjudication.open_conflict_count(personas.project, membership) == 1


def test_the_page_says_what_was_wrong_and_keeps_the_reason(client, personas, conflict):
    s1 = conflict[0]
    client.force_login(personas.owner)
    response = client.post(f"/p/{personas.project.slug}/samples/{s1.pk}/decide/", {"label": "fail", "reason": ""})
    assert response.status_code == 400 and "Say why" in response.content.decode()
    response = client.post(
        f"/p/{personas.project.slug}/samples/{s1.pk}/decide/", {"label": "nope", "reason": "<b>x</b>"}
    )
    body = response.content.decode()
    assert response.status_code == 400 and "not a label" in body and "&lt;b&gt;x&lt;/b&gt;" in body
    # No label is chosen for the owner: a decision overrules experts, so it is never one click on a default.
    page = client.get(f"/p/{personas.project.slug}/conflicts/").content.decode()
    assert f'<select name="label" id="label-{s1.pk}" required>\n            <option value="">' in page
    response = client.post(f"/p/{personas.project.slug}/samples/{s1.pk}/decide/", {"label": "", "reason": REASON})
    assert response.status_code == 400 and not Decision.objects.exists()


def test_conflicts_are_counted_on_the_overview_and_queue(client, personas, conflict):
    client.force_login(personas.owner)
    for url in (f"/p/{personas.project.slug}/", f"/p/{personas.project.slug}/queue/"):
        body = client.get(url).content.decode()
        assert 'data-stat="conflicts"><span class="n">1</span> open conflict</a>' in body, url
    client.force_login(personas.viewer)
    assert (
        'data-stat="conflicts"><span class="n">1</span>' in client.get(f"/p/{personas.project.slug}/").content.decode()
    )
    # A blind reviewer who did not review s1 is not told others disagree on it.
    newcomer = make_user("nils")
    Membership.objects.create(project=personas.project, user=newcomer, role=Role.REVIEWER)
    client.force_login(newcomer)
    body = client.get(f"/p/{personas.project.slug}/conflicts/").content.decode()
    assert '<span data-stat="open-conflicts">0</span>' in body and DODGES not in body


@pytest.mark.django_db(transaction=True)
def test_two_owners_deciding_at_once_one_wins_the_other_is_told(personas, monkeypatch):
    from memory import dispatch

    for name in ("request_regeneration", "request_episodic_update"):
        monkeypatch.setattr(dispatch, name, lambda *args, **kwargs: False)
    monkeypatch.setattr(dispatch, "sync_sample", lambda *args: None)
    second_owner = make_user("owen")
    Membership.objects.create(project=personas.project, user=second_owner, role=Role.OWNER)
    sample = add_sample(personas.project, "race")
    add_feedback(sample, personas.reviewer, "pass", WARM)
    add_feedback(sample, second_owner, "fail", DODGES)
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide(user, label) -> None:
        try:
            start.wait()
            outcomes[user.username] = adjudication.decide(sample, label, REASON, user)
        except BaseException as error:  # noqa: BLE001 - inspected below
            outcomes[user.username] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(personas.owner, "pass")),
        threading.Thread(target=decide, args=(second_owner, "fail")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    won = [o for o in outcomes.values() if isinstance(o, Decision)]
    told = [o for o in outcomes.values() if isinstance(o, adjudication.AlreadyDecided)]
    assert len(won) == 1 and len(told) == 1, outcomes
    assert "first; nothing was changed" in str(told[0])
    assert Decision.objects.count() == 1
    assert Feedback.objects.filter(sample=sample, author__username="(team decision)").count() == 1


def test_the_working_memory_shows_an_undecided_conflict_as_disputed(personas, conflict):
    from judging.judge import working_memory
    from memory.llm.offline import OfflineProvider
    from memory.llm.prompts import example_block

    s1, warm, dodges, other, _ = conflict
    sync.repair(personas.project)
    memory = working_memory(personas.project, s1.inputs_text(), s1.output_text())
    from_s1 = [e for e in memory.examples if e.feedback_id in (warm.pk, dodges.pk)]
    assert from_s1 and all(e.disputed == ["fail", "pass"] for e in from_s1)  # both labels, whichever came back
    assert all(e.same_item for e in from_s1)  # the item itself, but disputed: it does not decide
    block = example_block(from_s1[0])
    assert 'disputed="true"' in block and "<experts_disagree>fail / pass</experts_disagree>" in block
    only_disputed = type(memory)(**{**memory.__dict__, "examples": from_s1})
    verdict = OfflineProvider().judge(only_disputed)
    assert verdict.value is None and "disputed" in verdict.rationale and "fail / pass" in verdict.rationale

    decision = adjudication.decide(s1, "fail", REASON, personas.owner)
    sync.repair(personas.project)
    memory = working_memory(personas.project, s1.inputs_text(), s1.output_text())
    retrieved = {e.feedback_id: e for e in memory.examples}
    assert warm.pk not in retrieved and decision.feedback_id in retrieved  # decided: the overruled label is gone
    assert not any(e.disputed for e in memory.examples)
    assert OfflineProvider().judge(memory).value == "fail"  # the same item, decided: its label stands


@pytest.mark.django_db(transaction=True)
def test_through_the_worker_the_memory_follows_a_decision_and_its_undo(celery_worker, personas, settings):
    """The decision is made as the page makes it; the signals dispatch on commit; a real worker does the rest."""
    from tests.test_memory_worker import wait_for

    settings.MEMALIGN_DISTILL_DELAY_SECONDS = 0.05
    settings.MEMALIGN_DISTILL_QUIET_SECONDS = 0.3
    rhea = make_user("rhea")
    Membership.objects.create(project=personas.project, user=rhea, role=Role.REVIEWER)
    s1 = add_sample(personas.project, "s1")
    warm = add_feedback(s1, personas.reviewer, "pass", WARM)
    dodges = add_feedback(s1, rhea, "fail", DODGES)
    pid = personas.project.pk

    def sources() -> set[int]:
        return set(
            PrincipleSource.objects.filter(
                principle__project=personas.project, principle__retired=False, feedback__isnull=False
            ).values_list("feedback_id", flat=True)
        )

    wait_for(lambda: set(episodic.entries(pid)) == {warm.pk, dodges.pk}, message="both reviews in Chroma")
    wait_for(lambda: {warm.pk, dodges.pk} <= sources(), message="both critiques distilled")
    decision = adjudication.decide(s1, "fail", REASON, personas.owner)
    wait_for(lambda: set(episodic.entries(pid)) == {dodges.pk, decision.feedback_id}, message="episodic follows")
    wait_for(lambda: warm.pk not in sources() and decision.feedback_id in sources(), message="principles follow")
    adjudication.undo(personas.project, decision.pk)
    wait_for(lambda: set(episodic.entries(pid)) == {warm.pk, dodges.pk}, message="episodic restored")
    wait_for(lambda: warm.pk in sources() and decision.feedback_id not in sources(), message="principles restored")
