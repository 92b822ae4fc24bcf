"""The queue's teaching order: what teaches the judge most comes first, with an evenly spread random audit slice."""

from __future__ import annotations

import time

import pytest

from judging import teaching
from reviews import queue
from reviews.models import QueueOrder, QueuePriority
from reviews.queue import QueueQuery
from tests.conftest import add_feedback, add_sample

REFUND = "Where is my refund? I returned the parcel three weeks ago."
PASSWORD_RESET = "How do I reset my password? The reset e-mail never arrives."
POLITE = "I am sorry for the wait. Your refund was sent today; it reaches your account within 3 days."
RUDE = "Read the FAQ. We do not answer questions that are already answered there."


def _taught_project(personas):
    """Reviewed examples: refund replies all labelled pass; password replies split between pass and fail."""
    project = personas.project
    for n in range(3):
        sample = add_sample(project, f"refund-{n}", "pass", inputs={"question": REFUND}, outputs=POLITE + f" #{n}")
        add_feedback(sample, personas.reviewer, "pass")
    for n, label in enumerate(["pass", "fail", "pass", "fail"]):
        sample = add_sample(project, f"reset-{n}", "pass", inputs={"question": PASSWORD_RESET}, outputs=RUDE + f" #{n}")
        add_feedback(sample, personas.reviewer, label, "" if label == "pass" else "Dismissive: it sends them away.")
    return project


def test_an_uncertain_sample_comes_before_a_certain_one(personas):
    """A sample whose nearest reviewed neighbours split (password replies) ranks above one they agree on."""
    project = _taught_project(personas)
    project.audit_percent = 0
    project.save()
    certain = add_sample(project, "certain", "pass", inputs={"question": REFUND}, outputs=POLITE)
    uncertain = add_sample(project, "uncertain", "pass", inputs={"question": PASSWORD_RESET}, outputs=RUDE)

    assert teaching.rank(project) == 9
    ranks = dict(QueuePriority.objects.filter(project=project).values_list("sample_id", "rank"))
    assert ranks[uncertain.pk] < ranks[certain.pk]
    reasons = QueuePriority.objects.get(sample=uncertain).reasons
    assert any("neighbours disagree" in r for r in reasons), reasons

    query = QueueQuery(filter="todo", order="teach")
    todo = list(queue.samples(project, personas.reviewer, query).values_list("external_id", flat=True))
    assert todo == ["uncertain", "certain"]
    assert list(queue.samples(project, personas.reviewer, QueueQuery(filter="todo")).values_list("id", flat=True)) == [
        certain.pk,
        uncertain.pk,
    ]  # the plain order stays the import order


def test_disagreeing_with_the_imported_judge_ranks_a_sample_up(personas):
    """Where the memory's vote (every refund reply passed) contradicts the imported verdict, review it early."""
    project = _taught_project(personas)
    project.audit_percent = 0
    project.save()
    agreeing = add_sample(project, "agreeing", "pass", inputs={"question": REFUND}, outputs=POLITE)
    contradicted = add_sample(project, "contradicted", "fail", inputs={"question": REFUND}, outputs=POLITE)
    teaching.rank(project)
    priority = QueuePriority.objects.get(sample=contradicted)
    assert priority.rank < QueuePriority.objects.get(sample=agreeing).rank
    assert any("disagrees with the imported judge" in r for r in priority.reasons)


def test_the_audit_slice_keeps_its_share_and_is_spread_evenly(personas):
    """20 % drawn at random, within binomial tolerance overall, and about one in five in every stretch."""
    project = personas.project
    reviewed = add_sample(project, "reviewed", "pass")
    add_feedback(reviewed, personas.reviewer, "pass")
    for n in range(300):
        add_sample(project, f"s{n}", "pass" if n % 3 else "fail")
    teaching.rank(project)
    rows = list(QueuePriority.objects.filter(project=project).order_by("rank").values_list("audit", "sample_id"))
    audit = sum(flag for flag, _ in rows)
    # 301 draws at p = 0.2: mean 60, sd 6.9; 4 sd either side.
    assert 32 <= audit <= 88, audit
    # Spread evenly: while both kinds last, every window of 50 holds 10 audit samples.
    last_audit_rank = max(rank for rank, (flag, _) in enumerate(rows) if flag)
    for start in range(0, min(last_audit_rank, len(rows) - 50) - 50, 50):
        assert sum(flag for flag, _ in rows[start : start + 50]) == 10
    # A stable draw: ranking again keeps the same slice.
    teaching.rank(project)
    assert audit == QueuePriority.objects.filter(project=project, audit=True).count()


def test_interleave_spreads_a_share_evenly():
    merged = teaching.interleave(list("tttttttt"), list("AA"), 0.2)
    assert "".join(merged) == "ttttAttttA"
    assert "".join(teaching.interleave(list("tt"), list("AAAA"), 0.2)) == "ttAAAA"  # the rest follows
    assert "".join(teaching.interleave(list("ttt"), [], 0.5)) == "ttt"


def test_ranking_is_cleared_without_reviewed_examples(personas):
    project = personas.project
    sample = add_sample(project, "only")
    feedback = add_feedback(sample, personas.reviewer, "pass")
    teaching.rank(project)
    assert QueuePriority.objects.filter(project=project).exists()
    feedback.delete()
    assert teaching.rank(project) == 0
    assert not QueuePriority.objects.filter(project=project).exists()


def test_auto_order_teaches_once_ranked_and_reviewers_may_pick_plain(client, personas):
    project = _taught_project(personas)
    project.audit_percent = 0
    project.save()
    add_sample(project, "certain", "pass", inputs={"question": REFUND}, outputs=POLITE)
    add_sample(project, "uncertain", "pass", inputs={"question": PASSWORD_RESET}, outputs=RUDE)
    client.force_login(personas.owner)
    url = f"/p/{project.slug}/queue/?filter=unreviewed"
    page = client.get(url).content.decode()
    assert 'data-order="plain" aria-current="true"' in page  # not ranked yet: import order
    assert page.index(">certain<") < page.index(">uncertain<")

    teaching.rank(project)
    page = client.get(url).content.decode()
    assert 'data-order="teach" aria-current="true"' in page
    assert page.index(">uncertain<") < page.index(">certain<")
    assert "neighbours disagree" in page

    page = client.get(url + "&order=plain").content.decode()
    assert page.index(">certain<") < page.index(">uncertain<")
    assert "order=plain" in page  # the choice travels into the review links

    project.queue_order = QueueOrder.PLAIN
    project.save()
    assert 'data-order="plain" aria-current="true"' in client.get(url).content.decode()


def test_review_page_walks_the_teaching_order_and_shows_the_position(client, personas):
    project = _taught_project(personas)
    project.audit_percent = 0
    project.save()
    certain = add_sample(project, "certain", "pass", inputs={"question": REFUND}, outputs=POLITE)
    uncertain = add_sample(project, "uncertain", "pass", inputs={"question": PASSWORD_RESET}, outputs=RUDE)
    teaching.rank(project)
    client.force_login(personas.reviewer)  # who reviewed every other sample
    page = client.get(f"/p/{project.slug}/samples/{uncertain.pk}/?filter=todo").content.decode()
    assert f'data-next-url="/p/{project.slug}/samples/{certain.pk}/?filter=todo&amp;order=teach"' in page
    assert "<strong>1</strong> of 2 in “Needs my review”" in page


@pytest.mark.django_db(transaction=True)
def test_a_worker_ranks_the_queue_after_a_save(personas, celery_worker, settings):
    """Saving feedback queues the ranking task; a real worker stores the order without the page computing it."""
    settings.MEMALIGN_QUEUE_RANK_DELAY_SECONDS = 0
    project = personas.project
    first = add_sample(project, "a")
    add_sample(project, "b")
    add_feedback(first, personas.reviewer, "pass")
    deadline = time.monotonic() + 30
    while QueuePriority.objects.filter(project=project).count() < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert QueuePriority.objects.filter(project=project).count() == 2


def test_the_overview_reports_agreement_on_the_audit_slice_apart(client, personas):
    """Figures over every review lean toward hard samples once the queue teaches: the audit slice is shown apart."""
    project = personas.project
    samples = [add_sample(project, f"s{n}", "pass" if n % 2 else "fail") for n in range(40)]
    for sample in samples:
        add_feedback(sample, personas.reviewer, "pass", "" if sample.judge_value == "pass" else "Polite enough, fine.")
    client.force_login(personas.owner)
    assert 'id="audit-slice-note"' not in client.get(f"/p/{project.slug}/").content.decode()  # not ranked yet
    teaching.rank(project)
    audit = QueuePriority.objects.filter(project=project, audit=True).count()
    assert 0 < audit < 40
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert 'id="audit-slice-note"' in page
    assert f"on its {audit} reviewed sample" in page
    assert 'data-figures="audit"' in page and 'data-figures="overview"' in page


def test_a_perfect_score_on_a_small_audit_slice_is_not_graded(client, personas):
    """Kappa 1.00 "(95% interval 1.00 to 1.00) — good enough to gate a release" on an audit slice of 5 reviewed
    samples (a walk-through): too few to grade, and a bootstrap that collapses is not an interval."""
    project = personas.project
    samples = [add_sample(project, f"s{n}", "pass" if n % 2 else "fail") for n in range(20)]
    for sample in samples:
        add_feedback(sample, personas.reviewer, sample.judge_value, "Agreed.")
    teaching.rank(project)
    # The slice is drawn by the samples' ids (a share of them, not a count): five of them, whatever the ids are.
    QueuePriority.objects.filter(project=project).update(audit=False)
    QueuePriority.objects.filter(project=project, sample__in=samples[:5]).update(audit=True)
    audit = 5
    client.force_login(personas.owner)
    page = client.get(f"/p/{project.slug}/").content.decode()
    figure = page.split('data-figures="audit"')[1].split("</section>")[0]
    assert f'data-reading="audit">too few samples to judge ({audit} of 10 needed)<' in figure
    assert "gate a release" not in figure and "1.00 to 1.00" not in page
    assert f"all {audit} agree, so the bootstrap interval collapses" in figure


def test_an_owner_sets_the_queue_order_and_audit_share(client, personas):
    from django.forms.models import model_to_dict

    from reviews.forms import ProjectForm

    project = personas.project
    client.force_login(personas.owner)
    form = {k: v for k, v in model_to_dict(project, fields=ProjectForm.Meta.fields).items() if v is not None}
    url = f"/p/{project.slug}/settings/"
    assert client.post(url, {**form, "queue_order": "plain", "audit_percent": "35"}).status_code == 302
    project.refresh_from_db()
    assert (project.queue_order, project.audit_percent) == ("plain", 35)
    refused = client.post(url, {**form, "audit_percent": "101"})
    assert refused.status_code == 400 and "between 0 and 100" in refused.content.decode()
    refused = client.post(url, {**form, "queue_order": "random"})
    assert refused.status_code == 400 and "Select a valid choice" in refused.content.decode()


def test_next_and_previous_walk_the_teaching_order_then_the_unranked_samples(personas):
    """Keyset steps through ranked samples by rank, then samples imported since the ranking, by id."""
    project = _taught_project(personas)
    for n in range(6):
        add_sample(project, f"ranked-{n}", "pass" if n % 2 else "fail", inputs={"question": REFUND}, outputs=RUDE)
    teaching.rank(project)
    for n in range(3):
        add_sample(project, f"later-{n}")  # not ranked yet
    query = QueueQuery(filter="all", order="teach")
    order = list(queue.samples(project, personas.reviewer, query).values_list("id", flat=True))
    assert len(order) == 16 and [s for s in order[-3:]] == sorted(order[-3:])
    walked, here = [order[0]], order[0]
    while (step := queue.neighbours(project, personas.reviewer, query, here)[1]) is not None:
        walked.append(step)
        here = step
    assert walked == order
    back = [here]
    while (step := queue.neighbours(project, personas.reviewer, query, here)[0]) is not None:
        back.append(step)
        here = step
    assert back == order[::-1]
    assert [queue.position(project, personas.reviewer, query, i)[0] for i in order] == list(range(1, 17))
