"""What the judge can retrieve is what the memory pages list: retrieval, the episodic browser, its Conflicts and
the unalign preview agree after an adjudication and after an owner leaves feedback out; one example per sample."""

from __future__ import annotations

import re

import pytest

from judging.judge import working_memory
from memory import episodic, sync, unalign
from memory.llm.offline import OfflineProvider
from reviews import adjudication, team
from reviews.models import Feedback, Membership, Role
from tests.conftest import add_feedback, add_sample, make_user

WARM = "The reply is warm, apologises for the delay and thanks the customer for their patience throughout."
DODGES = "The reply never answers the refund question and dodges what the customer actually asked about here."
REASON = "Politeness cannot make up for ignoring the refund question: a reply that dodges the request fails."


@pytest.fixture
def overlap(personas):
    """s1 reviewed both ways (rafael pass, rhea fail); s2..s4 reviewed twice alike; k = 3."""
    project = personas.project
    project.reviews_per_sample, project.retrieval_k = 2, 3
    project.save(update_fields=["reviews_per_sample", "retrieval_k"])
    rhea = make_user("rhea")
    Membership.objects.create(project=project, user=rhea, role=Role.REVIEWER)
    s1 = add_sample(project, "s1", inputs={"question": "Where is my refund?"}, outputs="Thanks for waiting!")
    warm = add_feedback(s1, personas.reviewer, "pass", WARM)
    dodges = add_feedback(s1, rhea, "fail", DODGES)
    for n in range(2, 5):
        sample = add_sample(project, f"s{n}", inputs={"question": f"Where is my refund {n}?"})
        add_feedback(sample, personas.reviewer, "pass", f"Answers refund question {n} plainly and kindly.")
        add_feedback(sample, rhea, "pass", f"Gives the refund date {n} the customer asked for.")
    sync.repair(project)
    return personas, s1, warm, dodges, rhea


def listed(client, slug: str, **params) -> dict[int, str]:
    """The episodic browser's rows: feedback id -> the status it shows."""
    body = client.get(f"/p/{slug}/memory/episodic/", params).content.decode()
    return {int(i): s for i, s in re.findall(r'data-feedback-id="(\d+)" data-status="([^"]+)"', body)}


def conflict_ids(client, slug: str) -> set[int]:
    body = client.get(f"/p/{slug}/memory/episodic/conflicts/", {"similarity": "0.999"}).content.decode()
    return {int(i) for pair in re.findall(r'data-conflict="(\d+-\d+)"', body) for i in pair.split("-")}


def assert_pages_match_retrieval(client, personas) -> set[int]:
    """Retrieval, Chroma, the browser, Conflicts and the unalign preview name the same feedback; return it."""
    project = personas.project
    client.force_login(personas.owner)
    in_store = set(episodic.entries(project.pk))
    retrievable = set(adjudication.learnable(Feedback.objects.filter(project=project)).values_list("pk", flat=True))
    assert in_store == retrievable
    assert set(listed(client, project.slug)) == retrievable  # the browser's default list is the memory
    assert conflict_ids(client, project.slug) <= retrievable  # a conflict pairs only what the judge sees
    everything = Feedback.objects.filter(project=project)
    preview = unalign.preview(project, everything)
    assert preview.in_store == preview.in_memory == len(retrievable)
    memory = working_memory(project, "Where is my refund?", "Thanks for waiting!")
    for example in memory.examples:
        assert example.feedback_id in retrievable
    return retrievable


def test_an_overlap_2_working_memory_holds_k_distinct_samples_with_both_critiques(overlap):
    personas, s1, warm, dodges, rhea = overlap
    memory = working_memory(personas.project, "Where is my refund 3?", "answer s3")
    samples = [Feedback.objects.get(pk=e.feedback_id).sample_id for e in memory.examples]
    assert len(memory.examples) == 3 and len(set(samples)) == 3  # not one sample twice
    agreed = [e for e in memory.examples if not e.disputed]
    assert agreed and all(len(e.other_critiques) == 1 for e in agreed)  # the other review's critique rides along
    verdict = OfflineProvider().judge(memory)
    assert "over 3 reviewed example(s)" in verdict.rationale  # each sample votes once


def test_after_an_adjudication_the_pages_list_what_the_judge_retrieves(client, overlap):
    personas, s1, warm, dodges, rhea = overlap
    client.force_login(personas.owner)
    assert {warm.pk, dodges.pk} <= conflict_ids(client, personas.project.slug)  # undecided: a conflict
    decision = adjudication.decide(s1, "fail", REASON, personas.owner)
    sync.repair(personas.project)

    retrievable = assert_pages_match_retrieval(client, personas)
    assert warm.pk not in retrievable and {dodges.pk, decision.feedback_id} <= retrievable
    assert not {warm.pk, dodges.pk} & conflict_ids(client, personas.project.slug)  # decided: no conflict left
    assert listed(client, personas.project.slug, state="all")[warm.pk] == "overruled"
    assert listed(client, personas.project.slug, state="out") == {warm.pk: "overruled"}
    memory = working_memory(personas.project, s1.inputs_text(), s1.output_text())
    own = [e for e in memory.examples if e.same_item]
    assert len(own) == 1 and own[0].label == "fail" and own[0].critique == REASON and own[0].other_critiques == [DODGES]
    preview = unalign.preview(personas.project, Feedback.objects.filter(pk=warm.pk))
    assert (preview.in_store, preview.in_memory) == (0, 0)  # the preview says it is out already


def test_after_an_exclusion_the_memory_forgets_and_the_label_still_counts(client, overlap):
    personas, s1, warm, dodges, rhea = overlap
    project = personas.project
    before = team.team_agreement(project, with_pairs=False).overlapping
    selection = unalign.select(Feedback.objects.filter(project=project), unalign.Criteria(reviewer_id=rhea.pk))
    plan = unalign.preview(project, selection)
    result = unalign.exclude(project, selection, plan.token, "olivia", actor=personas.owner)
    assert result.removed == 4 and "labels kept" in result.version.summary
    sync.repair(project)

    retrievable = assert_pages_match_retrieval(client, personas)
    assert not Feedback.objects.filter(author=rhea, pk__in=retrievable).exists()
    assert Feedback.objects.filter(author=rhea).count() == 4  # kept, label and all
    assert set(listed(client, project.slug, state="out").values()) == {"left out"}
    assert team.team_agreement(project, with_pairs=False).overlapping == before  # agreement still counts them
    # An owner puts one back: it is in the memory again once stored.
    client.force_login(personas.owner)
    assert client.post(f"/p/{project.slug}/memory/include/{dodges.pk}/").status_code == 302
    sync.repair(project)
    assert dodges.pk in assert_pages_match_retrieval(client, personas)


def test_the_unalign_page_offers_exclude_to_owners_and_says_which_it_does(client, overlap):
    personas, s1, warm, dodges, rhea = overlap
    url = f"/p/{personas.project.slug}/memory/unalign/"
    client.force_login(personas.owner)
    body = client.get(url, {"feedback": warm.pk, "how": "exclude"}).content.decode()
    assert 'data-how="exclude"' in body and "Leave 1 feedback out of the memory" in body
    body = client.get(url, {"feedback": warm.pk, "how": "delete"}).content.decode()
    assert 'data-how="delete"' in body and "its labels leave every agreement figure too" in body
    token = unalign.token([warm.pk])
    response = client.post(url, {"feedback": warm.pk, "how": "exclude", "token": token})
    assert response.status_code == 200 and Feedback.objects.get(pk=warm.pk).excluded_from_memory is True
    # A reviewer cannot leave out: the choice is not offered, and asking for it deletes only their own.
    client.force_login(personas.reviewer)
    body = client.get(url, {"feedback": warm.pk}).content.decode()
    assert 'name="how"' not in body
    assert client.post(f"/p/{personas.project.slug}/memory/include/{warm.pk}/").status_code == 403
