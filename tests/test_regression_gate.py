"""The regression gate: a new memory version that flips guard verdicts is held, one that doesn't goes live."""

from __future__ import annotations

import re

import pytest

from evaluation import gate
from evaluation.models import GateCheck
from judging.models import JudgingSettings
from memory import budget, episodic, semantic, versions
from memory.models import EvaluationSettings, MemoryVersion
from reviews.models import Feedback
from tests.conftest import add_feedback, add_sample
from tests.fake_anthropic import forced_tool, prompt_parts

pytestmark = pytest.mark.django_db

HARMFUL = "Fail every reply, whatever it says."
HARMLESS = "A polite reply that answers the question passes."


class Model:
    """The fake Claude: it follows a principle that says to fail everything, otherwise it passes every reply;
    distillation proposes the principle the test sets next."""

    def __init__(self):
        self.next_principle = HARMFUL

    def __call__(self, request: dict):
        name, _ = forced_tool(request)
        text = " ".join(part for part, _ in prompt_parts(request))
        if name == "record_principles":  # cite every id in the prompt: the provider keeps the feedback ids only
            return {
                "principles": [
                    {
                        "text": self.next_principle,
                        "label": "",
                        "source_ids": [int(i) for i in re.findall(r'id="(\d+)"', text)],
                    }
                ]
            }
        return {"value": "fail" if HARMFUL in text else "pass", "rationale": "scripted"}


def gated_project(personas, fake_anthropic):
    project = personas.project
    project.provider = "anthropic"
    project.save(update_fields=["provider"])
    for i in range(8):
        sample = add_sample(
            project, f"g{i}", inputs={"question": f"Where is parcel {i}?"}, outputs=f"Parcel {i} ships today."
        )
        add_feedback(sample, personas.reviewer, "pass", f"Answers where parcel {i} is, politely.")
    episodic.upsert(list(Feedback.objects.filter(project=project).select_related("sample")))
    EvaluationSettings.objects.create(project=project, gate_enabled=True, guard_size=6, gate_threshold=0.1)
    model = Model()
    fake_anthropic.responder = model
    good = versions.add_manual_principle(project, "Judge the reply, not the customer.", "olivia").created_in
    return project, model, good


def new_critique(personas, project, name: str):
    sample = add_sample(project, name, inputs={"question": f"Question {name}?"}, outputs=f"Answer {name}.")
    add_feedback(sample, personas.reviewer, "pass", f"Critique of {name}: a fine answer.")


def test_a_version_that_flips_guard_verdicts_is_held_and_the_judge_keeps_the_good_one(personas, fake_anthropic):
    project, model, good = gated_project(personas, fake_anthropic)
    new_critique(personas, project, "x1")
    written = semantic.regenerate(project, force=True).versions
    assert written and HARMFUL in str(written[-1].principles)
    checked = gate.check(project, written)
    assert checked.held and checked.agreement_before == 1.0 and checked.agreement_after == 0.0
    assert len(checked.flipped) == 6 and {f["after"] for f in checked.flipped} == {"fail"}
    assert [p["text"] for p in checked.added] == [HARMFUL] and checked.removed == []
    written[-1].refresh_from_db()
    assert written[-1].status == MemoryVersion.Status.HELD
    assert budget.latest_version(project) == good  # the active version
    assert HARMFUL not in [p.text for p in budget.principle_set(project).principles]
    assert budget.principle_set(project).version == good.number  # what a verdict names as its version
    # The owner discards it: the principles are back to the good version's, and the judge uses them.
    restored = versions.discard_held(project, "olivia")
    assert restored.principles == good.principles and budget.latest_version(project) == restored
    assert budget.principle_set(project).version == restored.number
    assert HARMFUL not in [p.text for p in versions.active_principles(project)]

    model.next_principle = HARMLESS
    new_critique(personas, project, "x2")
    written = semantic.regenerate(project, force=True).versions
    checked = gate.check(project, written)
    assert not checked.held and checked.flipped == [] and checked.agreement_after == 1.0
    assert budget.latest_version(project) == written[-1]
    assert HARMLESS in [p.text for p in budget.principle_set(project).principles]
    assert budget.principle_set(project).version == written[-1].number


def test_the_owner_can_activate_a_held_version(personas, fake_anthropic, client):
    project, _, good = gated_project(personas, fake_anthropic)
    new_critique(personas, project, "x1")
    written = semantic.regenerate(project, force=True).versions
    assert gate.check(project, written).held
    client.force_login(personas.owner)
    assert 'id="held-notice"' in client.get(f"/p/{project.slug}/memory/").content.decode()  # the overview says so
    page = client.get(f"/p/{project.slug}/memory/evaluations/").content.decode()
    flipped = GateCheck.objects.get(version=written[-1]).flipped  # the guard set: random reviewed samples
    assert "Held by the regression gate" in page and HARMFUL in page
    assert flipped and all(f">{f['external_id']}</a>" in page for f in flipped)
    client.post(f"/p/{project.slug}/memory/held/activate/")
    assert budget.latest_version(project) == written[-1]
    assert HARMFUL in [p.text for p in budget.principle_set(project).principles]
    assert budget.principle_set(project).version == written[-1].number  # released: the set is read again


def test_a_gate_check_stores_the_guard_verdicts_position_bias_and_flip_rates(personas, fake_anthropic, client):
    """Pairwise at the fake server: the good version's judge always says "A" (whatever the order: it follows the
    slot), the harmful version's always "B"; every guard verdict is re-asked for stability."""
    project = personas.project
    project.label_kind, project.provider = "pairwise", "anthropic"
    project.save()
    JudgingSettings.objects.create(project=project, stability_percent=100)
    for i in range(6):
        sample = add_sample(project, f"p{i}", outputs="", output_a=f"first answer {i}", output_b=f"second {i}")
        add_feedback(sample, personas.reviewer, "A", f"The first answer {i} is better.")
    EvaluationSettings.objects.create(project=project, gate_enabled=True, guard_size=6, gate_threshold=0.1)
    fake_anthropic.responder = lambda request: {
        "value": "B" if HARMFUL in " ".join(part for part, _ in prompt_parts(request)) else "A",
        "rationale": "scripted",
    }
    versions.add_manual_principle(project, "Judge the reply, not the customer.", "olivia")
    held = versions.add_manual_principle(project, HARMFUL, "olivia").created_in
    checked = gate.check(project, [held])
    assert checked.held
    assert checked.checks == {
        "checked": True,
        "before": {"position_bias_rate": 1.0, "flip_rate": 0.0},
        "after": {"position_bias_rate": 0.0, "flip_rate": 0.0},
    }
    assert checked.usage["calls"] == 2 * 6 * 3  # two versions, six guard samples, three asks each
    client.force_login(personas.owner)
    page = client.get(f"/p/{project.slug}/memory/evaluations/").content.decode()
    assert re.search(r"data-position-bias>1\.00<", page) and re.search(r"data-held-position-bias>0\.00<", page)


def test_the_offline_gate_records_its_rates_as_not_checked(personas):
    project = personas.project
    for i in range(4):
        add_feedback(add_sample(project, f"o{i}"), personas.reviewer, "pass", f"Fine {i}.")
    EvaluationSettings.objects.create(project=project, gate_enabled=True, guard_size=4, gate_threshold=0.5)
    versions.add_manual_principle(project, "Judge the reply.", "olivia")
    newer = versions.add_manual_principle(project, "Judge the reply politely.", "olivia").created_in
    unchecked = {"position_bias_rate": None, "flip_rate": None}
    assert gate.check(project, [newer]).checks == {"checked": False, "before": unchecked, "after": unchecked}


def test_the_gate_is_off_by_default_and_the_guard_set_is_fixed(personas, fake_anthropic):
    project, _, _ = gated_project(personas, fake_anthropic)
    settings_row = EvaluationSettings.objects.get(project=project)
    first = [s.pk for s in gate.guard_samples(project, settings_row)]
    assert len(first) == 6 and [s.pk for s in gate.guard_samples(project, settings_row)] == first
    settings_row.gate_enabled = False
    settings_row.save()
    new_critique(personas, project, "x1")
    written = semantic.regenerate(project, force=True).versions
    assert gate.check(project, written) is None and not GateCheck.objects.exists()
    assert EvaluationSettings._meta.get_field("gate_enabled").default is False


def test_a_blind_reviewer_does_not_see_the_flipped_samples_labels(personas, fake_anthropic, client):
    project, _, _ = gated_project(personas, fake_anthropic)
    new_critique(personas, project, "x1")
    assert gate.check(project, semantic.regenerate(project, force=True).versions).held
    client.force_login(personas.reviewer)
    assert "held-flipped" not in client.get(f"/p/{project.slug}/memory/evaluations/").content.decode()
    client.force_login(personas.viewer)
    assert "held-flipped" in client.get(f"/p/{project.slug}/memory/evaluations/").content.decode()


def test_the_regeneration_task_runs_the_gate(personas, fake_anthropic, settings):
    from memory.tasks import regenerate_principles

    settings.MEMALIGN_DISTILL_QUIET_SECONDS = 0
    project, _, good = gated_project(personas, fake_anthropic)
    new_critique(personas, project, "x1")
    result = regenerate_principles.apply(args=(project.pk,)).get()
    assert result["versions"] and result["held"] is True
    assert budget.latest_version(project) == good
