"""The settings' ranges live on the models: the settings page, the admin and `import_judge` refuse the same values
with the same words."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from memory.models import EvaluationSettings
from reviews.models import Project

OUT_OF_RANGE = [
    ("retrieval_k", 51, "Retrieve between 0 and 50 examples."),
    ("provider_concurrency", 0, "Allow between 1 and 64 provider calls in flight."),
    ("max_principles", 4, "Keep between 5 and 2,000 principles."),
    ("principle_budget_tokens", 199, "Allow between 200 and 200,000 principle tokens per verdict."),
    ("reviews_per_sample", 6, "Ask for between 1 and 5 reviews per sample."),
    ("audit_percent", 101, "The audit slice is a share between 0 and 100 %."),
]


@pytest.mark.parametrize("field,value,message", OUT_OF_RANGE)
def test_a_project_refuses_settings_out_of_range(personas, field, value, message):
    project = personas.project
    setattr(project, field, value)
    with pytest.raises(ValidationError) as refused:
        project.full_clean()
    assert refused.value.message_dict[field] == [message]


@pytest.mark.parametrize("field,value,message", OUT_OF_RANGE[:2])
def test_the_admin_refuses_what_the_settings_page_refuses(personas, field, value, message):
    request = RequestFactory().post("/")
    request.user = personas.owner
    form_class = admin.site._registry[Project].get_form(request, personas.project)
    data = {f: getattr(personas.project, f) for f in form_class.base_fields if hasattr(personas.project, f)}
    data |= {"categories": "[]", "created_by": personas.owner.pk, field: value}
    form = form_class(data, instance=personas.project)
    assert not form.is_valid()
    assert form.errors[field] == [message]


def test_the_gate_settings_refuse_a_threshold_of_one_or_more(personas):
    row = EvaluationSettings(project=personas.project, guard_size=0, gate_threshold=1.0, conflict_similarity=1.5)
    with pytest.raises(ValidationError) as refused:
        row.full_clean()
    assert refused.value.message_dict == {
        "guard_size": ["The guard set holds 1 to 1,000 samples."],
        "gate_threshold": ["The threshold is a drop in agreement between 0 and 1, e.g. 0.05."],
        "conflict_similarity": ["Similarity is between 0 and 1."],
    }


def test_importing_a_judge_refuses_a_project_setting_out_of_range(personas):
    from memory import portable

    document = portable.export(personas.project)
    document["provider"]["max_principles"] = 3
    with pytest.raises(portable.Refused) as refused:
        portable.import_judge(json.dumps(document), personas.owner)
    assert "max_principles" in str(refused.value)
