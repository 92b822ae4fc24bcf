"""The aligned judge over stored samples, in batches through a real worker, with progress and agreement."""

import pytest

from memory import episodic
from memory.judge import agreement
from memory.models import Judgement, JudgeRun
from memory.tasks import start_judge_run
from tests.conftest import add_feedback, add_sample
from tests.test_memory_worker import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def reviewed_project(personas):
    """Eight reviewed samples: refund replies the experts fail, thank-you replies they pass; the judge passes all."""
    refunds = [
        ("I want a refund for the broken kettle", "We value your feedback about the kettle."),
        ("Refund my broken toaster please", "We value your feedback about the toaster."),
        ("The blender broke, I want my money back", "We value your feedback about the blender."),
        ("My refund for the broken microwave never arrived", "We value your feedback about the microwave."),
    ]
    thanks = [
        ("Thank you so much for the quick help!", "You're very welcome, glad we could help!"),
        ("Thanks, your agent was lovely", "Thank you, we'll pass your kind words on to her!"),
        ("Just wanted to say thanks for the great service", "That's so kind of you, thank you for telling us!"),
        ("Many thanks to your support team", "Thank you, it was a pleasure to help you!"),
    ]
    feedback = []
    for i, ((message, reply), label) in enumerate([(r, "fail") for r in refunds] + [(t, "pass") for t in thanks]):
        sample = add_sample(personas.project, f"j{i}", inputs={"customer_message": message}, outputs=reply, judge_value="pass")
        feedback.append(add_feedback(sample, personas.reviewer, label, "" if label == "pass" else "Boilerplate that ignores the refund request."))
    return feedback


def test_a_run_judges_every_reviewed_sample_and_measures_agreement(celery_worker, personas, client):
    feedback = reviewed_project(personas)
    wait_for(lambda: len(episodic.entries(personas.project.pk)) == 8, message="eight episodic entries")
    add_sample(personas.project, "unreviewed")  # outside the "reviewed" scope
    run = start_judge_run(personas.project, personas.owner, JudgeRun.Scope.REVIEWED)
    assert run.total == 8
    wait_for(lambda: JudgeRun.objects.get(pk=run.pk).status == "done", message="the run to finish")
    run.refresh_from_db()
    assert (run.done, run.failed) == (8, 0)
    judgements = Judgement.objects.filter(run=run).select_related("sample")
    assert judgements.count() == 8
    own = {f.sample_id: f.pk for f in feedback}
    for judgement in judgements:
        assert own[judgement.sample_id] not in judgement.retrieved  # never its own feedback
        assert judgement.memory_version_id is None or judgement.memory_version.project_id == personas.project.pk
    result = agreement(run)
    assert result.reviewed == 8
    assert result.base == pytest.approx(0.5)  # the imported judge passed everything
    assert result.aligned is not None and result.aligned > result.base  # similar examples carry the experts' labels
    client.force_login(personas.viewer)
    progress = client.get(f"/p/{personas.project.slug}/memory/judge-runs/{run.pk}/")
    assert progress.status_code == 286  # finished: the progress bar stops polling
    page = client.get(f"/p/{personas.project.slug}/memory/").content.decode()
    assert 'data-agreement="base">50%' in page


def test_a_run_stops_when_the_provider_keeps_failing(celery_worker, personas, fake_anthropic):
    from tests.fake_anthropic import error_reply

    personas.project.provider = "anthropic"
    personas.project.save()
    reviewed_project(personas)
    fake_anthropic.push(*[error_reply(500)] * 40)
    run = start_judge_run(personas.project, personas.owner, JudgeRun.Scope.REVIEWED)
    wait_for(lambda: JudgeRun.objects.get(pk=run.pk).status == "failed", timeout=60, message="the run to fail")
    run.refresh_from_db()
    assert run.failed == 3 and run.done == 0
    assert "3 failures in a row" in run.error and "500" in run.error


def test_only_owners_start_runs_and_one_at_a_time(client, personas):
    reviewed = add_sample(personas.project, "x")
    add_feedback(reviewed, personas.reviewer, "fail", "Curt.")
    url = f"/p/{personas.project.slug}/memory/judge-runs/"
    client.force_login(personas.reviewer)
    assert client.post(url, {"scope": "reviewed"}).status_code == 403
    client.force_login(personas.owner)
    client.post(url, {"scope": "reviewed"})
    response = client.post(url, {"scope": "all"}, follow=True)
    assert "already in progress" in response.content.decode()
    assert JudgeRun.objects.filter(project=personas.project).count() == 1
    response = client.post(url, {"scope": "nonsense"}, follow=True)
    assert "Choose which samples" in response.content.decode()
