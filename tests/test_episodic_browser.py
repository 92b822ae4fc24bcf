"""The episodic memory browser: examples with search and filters, the label distribution, and conflicts found by
comparing the samples' stored vectors."""

from __future__ import annotations

import pytest

from evaluation import gate
from memory import browse, vectors
from memory.models import SampleVector
from reviews.models import Feedback, Membership, Role
from tests.conftest import add_feedback, add_sample, make_user


@pytest.fixture
def pair(personas):
    """Two near-identical samples the experts labelled differently, one unrelated, and a same-label twin."""
    project = personas.project
    second = make_user("sofia")
    Membership.objects.create(project=project, user=second, role=Role.REVIEWER)
    refund = {"customer_message": "Where is my refund? I returned the blender two weeks ago."}
    a = add_sample(project, "a", inputs=refund, outputs="We value your feedback and will be in touch.")
    b = add_sample(project, "b", inputs=refund, outputs="We value your feedback and we will be in touch.")
    c = add_sample(
        project, "c", inputs={"customer_message": "Do you ship to Norway?"}, outputs="Yes, in 3-5 working days."
    )
    d = add_sample(project, "d", inputs=refund, outputs="We value your feedback, and will be in touch.")
    fa = add_feedback(a, personas.reviewer, "pass", "Polite enough.")
    fb = add_feedback(b, second, "fail", "Ignores the refund question: <b>evasive</b>.")
    fc = add_feedback(c, second, "fail", "Too short.")
    fd = add_feedback(d, personas.reviewer, "pass", "Fine.")
    vectors.for_samples([a, b, c, d])  # stored once, as the background embedding does
    return {"a": fa, "b": fb, "c": fc, "d": fd, "second": second}


def test_conflicts_are_near_identical_samples_with_different_labels(personas, pair):
    found = browse.conflicts(Feedback.objects.filter(project=personas.project), 0.9)
    pairs = {(c.first.pk, c.second.pk) for c in found.pairs}
    b = pair["b"].pk
    assert pairs == {(min(b, pair["a"].pk), max(b, pair["a"].pk)), (min(b, pair["d"].pk), max(b, pair["d"].pk))}
    assert all(c.similarity >= 0.9 for c in found.pairs) and found.compared == 4 and found.unembedded == 0
    # Unrelated samples conflict only when the owner lowers the similarity that far.
    assert not browse.conflicts(Feedback.objects.filter(project=personas.project), 0.999).total
    assert browse.conflicts(Feedback.objects.filter(project=personas.project), 0.5).total >= found.total


def test_one_sample_labelled_both_ways_is_a_conflict_and_unembedded_samples_are_left_out(personas, pair):
    add_feedback(pair["a"].sample, pair["second"], "fail", "Evasive.")
    found = browse.conflicts(Feedback.objects.filter(project=personas.project, sample=pair["a"].sample), 0.9)
    assert found.total == 1 and found.pairs[0].similarity == 1.0
    SampleVector.objects.filter(sample=pair["b"].sample).delete()
    found = browse.conflicts(Feedback.objects.filter(project=personas.project), 0.9)
    assert found.unembedded == 1 and all(pair["b"].pk not in (c.first.pk, c.second.pk) for c in found.pairs)
    assert not SampleVector.objects.filter(sample=pair["b"].sample).exists()  # nothing was embedded


def test_the_conflicts_page_links_both_samples_and_checks_its_threshold(client, personas, pair):
    client.force_login(personas.viewer)
    url = f"/p/{personas.project.slug}/memory/episodic/conflicts/"
    body = client.get(url).content.decode()
    assert 'data-total="2"' in body
    for key in ("a", "b"):
        assert f'href="/p/{personas.project.slug}/samples/{pair[key].sample_id}/"' in body
    assert "&lt;b&gt;evasive&lt;/b&gt;" in body
    assert client.get(url, {"similarity": "0.2"}).status_code == 400
    assert client.get(url, {"similarity": "lots"}).status_code == 400
    assert 'data-total="0"' in client.get(url, {"similarity": "0.9999"}).content.decode()


def test_browse_filters_and_distribution(client, personas, pair):
    client.force_login(personas.owner)
    url = f"/p/{personas.project.slug}/memory/episodic/"
    body = client.get(url).content.decode()
    assert body.count("data-feedback-id=") == 4
    assert '<tr data-label="pass"><td><span class="badge">pass</span></td><td data-count>2</td>' in body
    assert '<tr data-label="fail"><td><span class="badge">fail</span></td><td data-count>2</td>' in body
    body = client.get(url, {"label": "fail", "reviewer": pair["second"].pk}).content.decode()
    assert body.count("data-feedback-id=") == 2
    body = client.get(url, {"q": "evasive"}).content.decode()
    assert body.count("data-feedback-id=") == 1 and f'data-feedback-id="{pair["b"].pk}"' in body
    body = client.get(url, {"q": "Norway"}).content.decode()
    assert body.count("data-feedback-id=") == 1 and f'data-feedback-id="{pair["c"].pk}"' in body


def test_a_blind_reviewer_sees_only_examples_on_samples_they_reviewed(client, personas, pair):
    client.force_login(personas.reviewer)
    body = client.get(f"/p/{personas.project.slug}/memory/episodic/").content.decode()
    assert body.count("data-feedback-id=") == 2 and f'data-feedback-id="{pair["b"].pk}"' not in body
    body = client.get(f"/p/{personas.project.slug}/memory/episodic/conflicts/").content.decode()
    assert 'data-total="0"' in body  # both sides of every conflict must be visible to them


def test_the_owner_tunes_the_projects_similarity(client, personas, pair):
    url = f"/p/{personas.project.slug}/memory/episodic/conflicts/"
    client.force_login(personas.viewer)
    assert client.post(url, {"similarity": "0.5"}).status_code == 403
    client.force_login(personas.owner)
    assert client.post(url, {"similarity": "1.5"}).status_code == 400
    assert gate.gate_settings(personas.project).conflict_similarity == 0.9
    assert client.post(url, {"similarity": "0.9999"}).status_code == 302
    assert gate.gate_settings(personas.project).conflict_similarity == 0.9999
    client.force_login(personas.viewer)
    body = client.get(url).content.decode()  # everyone now sees the conflicts at the owner's similarity
    assert 'data-total="0"' in body and "<span data-saved>0.9999</span>" in body
    assert 'data-total="2"' in client.get(url, {"similarity": "0.9"}).content.decode()
    assert 'id="conflicts-save"' not in body
