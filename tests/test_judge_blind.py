"""The judge-blind first pass: whoever reviews sees the judge's verdict and rationale only after choosing a label;
viewers, and projects that turned it off, see it at once. The Team page compares labels chosen blind and shown."""

from __future__ import annotations

import pytest

from reviews.models import Feedback, Membership, Role
from reviews.projects import create_project
from tests.conftest import add_sample

RATIONALE = "Judge-only rationale: the reply is curt."


@pytest.fixture
def sample(personas):
    return add_sample(personas.project, "b1", judge_value="fail", judge_rationale=RATIONALE)


def page(client, user, sample) -> str:
    client.force_login(user)
    return client.get(f"/p/{sample.project.slug}/samples/{sample.pk}/").content.decode()


def shows_verdict(body: str) -> bool:
    return RATIONALE in body or 'id="judge-value"' in body or 'data-judge-value="fail"' in body


def test_new_projects_are_judge_blind(personas):
    assert personas.project.judge_blind is True
    other = create_project(personas.owner, name="Fresh", criterion="Is it right?", label_kind="pass_fail")
    assert other.judge_blind is True


def test_who_sees_the_verdict_before_choosing_a_label(client, personas, sample):
    cases = [
        ("reviewer, blind project", personas.reviewer, True, False),
        ("owner, blind project (owners review too)", personas.owner, True, False),
        ("viewer, blind project (does not review)", personas.viewer, True, True),
        ("reviewer, verdict shown", personas.reviewer, False, True),
        ("owner, verdict shown", personas.owner, False, True),
    ]
    for name, user, blind, expected in cases:
        personas.project.judge_blind = blind
        personas.project.save(update_fields=["judge_blind"])
        body = page(client, user, sample)
        assert shows_verdict(body) is expected, name
        assert ('id="verdict-hidden"' in body) is not expected, name
        assert ('data-action="agree"' in body) is (expected and user != personas.viewer), name


def test_the_queue_hides_the_verdict_of_unlabelled_samples_from_a_blind_reviewer(client, personas, sample):
    client.force_login(personas.reviewer)
    body = client.get(f"/p/{personas.project.slug}/queue/").content.decode()
    assert "data-judge-hidden" in body and '<span class="badge">fail</span>' not in body
    assert 'id="judge"' not in body  # no "judge said" filter either
    client.force_login(personas.viewer)
    assert '<span class="badge">fail</span>' in client.get(f"/p/{personas.project.slug}/queue/").content.decode()


def test_a_blind_reviewer_cannot_filter_or_search_the_queue_by_the_judge(client, personas, sample):
    # Typed into the URL, "judge said" and a search of the rationale would tell the verdict of unlabelled samples.
    passing = add_sample(personas.project, "b2", judge_value="pass", judge_rationale="Warm and clear.")
    queue = f"/p/{personas.project.slug}/queue/"
    client.force_login(personas.reviewer)
    body = client.get(queue, {"judge": "fail", "filter": "all"}).content.decode()
    assert f"/samples/{passing.pk}/" in body  # "judge said" was not applied
    body = client.get(queue, {"q": "curt", "filter": "all"}).content.decode()
    assert f"/samples/{sample.pk}/" not in body  # only the rationale holds "curt": not searched
    client.force_login(personas.viewer)
    for params in ({"judge": "fail", "filter": "all"}, {"q": "curt", "filter": "all"}):
        body = client.get(queue, params).content.decode()
        assert f"/samples/{sample.pk}/" in body and f"/samples/{passing.pk}/" not in body, params


def test_choosing_a_label_reveals_the_verdict_and_records_it_was_blind(client, personas, sample):
    url = f"/p/{personas.project.slug}/samples/{sample.pk}/verdict/"
    client.force_login(personas.reviewer)
    assert client.get(url).status_code == 405
    assert client.post(url, {"label": "maybe"}).status_code == 400  # not a label of the project
    revealed = client.post(url, {"label": "pass"}, HTTP_HX_REQUEST="true")
    body = revealed.content.decode()
    assert revealed.status_code == 200 and RATIONALE in body and 'id="judge-value">fail' in body
    assert "You disagree with the judge" in body
    assert shows_verdict(page(client, personas.reviewer, sample))  # the page keeps it shown from now on
    save = f"/p/{personas.project.slug}/samples/{sample.pk}/feedback/"
    critique = "Perfectly polite and it answers the question the customer asked in full."
    assert client.post(save, {"label": "pass", "critique": critique, "revision": 0}).status_code == 302
    assert Feedback.objects.get(author=personas.reviewer).verdict_shown is False  # chosen before the reveal


def test_a_label_changed_after_the_reveal_was_chosen_seeing_the_verdict(client, personas, sample):
    client.force_login(personas.reviewer)
    client.post(f"/p/{personas.project.slug}/samples/{sample.pk}/verdict/", {"label": "pass"})
    client.post(f"/p/{personas.project.slug}/samples/{sample.pk}/feedback/", {"label": "fail", "revision": 0})
    assert Feedback.objects.get(author=personas.reviewer).verdict_shown is True


def test_without_the_blind_pass_every_label_is_chosen_seeing_the_verdict(client, personas, sample):
    personas.project.judge_blind = False
    personas.project.save(update_fields=["judge_blind"])
    client.force_login(personas.reviewer)
    client.post(f"/p/{personas.project.slug}/samples/{sample.pk}/feedback/", {"label": "fail", "revision": 0})
    assert Feedback.objects.get(author=personas.reviewer).verdict_shown is True


def test_only_members_who_review_may_reveal(client, personas, sample):
    url = f"/p/{personas.project.slug}/samples/{sample.pk}/verdict/"
    for user, status in [(personas.viewer, 403), (personas.outsider, 404)]:
        client.force_login(user)
        assert client.post(url, {"label": "pass"}).status_code == status


def test_the_team_page_compares_blind_and_shown_labels(client, personas):
    rhea = personas.other_owner
    Membership.objects.create(project=personas.project, user=rhea, role=Role.REVIEWER)
    samples = [add_sample(personas.project, f"t{i}", judge_value="pass") for i in range(4)]
    for s, label in zip(samples, ["pass", "fail", "pass", "fail"]):
        Feedback.objects.create(
            project=personas.project, sample=s, author=personas.reviewer, label=label, verdict_shown=False
        )
    for s in samples:
        Feedback.objects.create(project=personas.project, sample=s, author=rhea, label="pass", verdict_shown=True)
    client.force_login(personas.viewer)
    body = client.get(f"/p/{personas.project.slug}/team/").content.decode()
    blind = body[body.index('data-verdict-group="blind"') :]
    shown = body[body.index('data-verdict-group="shown"') :]
    assert "<td data-n>4</td>" in blind[:400] and "<td data-exact>50%</td>" in blind[:400]
    assert "<td data-n>4</td>" in shown[:400] and "<td data-exact>100%</td>" in shown[:400]


ALIGNED_RATIONALE = "Aligned-only rationale: another expert said fail here."


def aligned_verdict(sample, value: str = "fail"):
    from judging.models import Judgement

    return Judgement.objects.create(
        project=sample.project, sample=sample, value=value, rationale=ALIGNED_RATIONALE, provider="offline",
        model="m", tier="same_item",
    )  # fmt: skip


def test_the_aligned_verdict_is_withheld_like_the_judges_and_from_a_blind_reviewer_until_they_review(
    client, personas, sample
):
    """The aligned judge learned from the other experts' labels (an identical reviewed item decides by its label):
    on the review page it is withheld during the judge-blind first pass, and from a blind reviewer until they
    reviewed the sample. A walk-through found it shown ("Verdict: A … probability 0.97") before any choice."""
    aligned_verdict(sample)
    cases = [
        ("reviewer, blind project", personas.reviewer, True, False),
        ("reviewer, verdict shown (others' labels still hidden)", personas.reviewer, False, False),
        ("owner, blind project", personas.owner, True, False),
        ("owner, verdict shown", personas.owner, False, True),
        ("viewer", personas.viewer, True, True),
    ]
    for name, user, blind, expected in cases:
        personas.project.judge_blind = blind
        personas.project.save(update_fields=["judge_blind"])
        body = page(client, user, sample)
        assert (ALIGNED_RATIONALE in body) is expected, name
        assert ('id="aligned-verdict-hidden"' in body) is not expected, name


def test_choosing_a_label_reveals_the_aligned_verdict_to_an_owner_and_a_review_to_a_reviewer(client, personas, sample):
    aligned_verdict(sample)
    url = f"/p/{personas.project.slug}/samples/{sample.pk}/verdict/"
    client.force_login(personas.owner)
    body = client.post(url, {"label": "pass"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="latest-verdict" hx-swap-oob="true"' in body and ALIGNED_RATIONALE in body
    client.force_login(personas.reviewer)
    body = client.post(url, {"label": "pass"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="aligned-verdict-hidden"' in body and ALIGNED_RATIONALE not in body  # others' labels: once reviewed
    save = f"/p/{personas.project.slug}/samples/{sample.pk}/feedback/"
    assert (
        client.post(
            save,
            {
                "label": "pass",
                "critique": "Perfectly polite and it answers the question the customer asked in full.",
                "revision": 0,
            },
        ).status_code
        == 302
    )
    assert ALIGNED_RATIONALE in page(client, personas.reviewer, sample)
