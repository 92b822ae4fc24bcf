"""The judging app's forms: trying the aligned judge on an item (the dashboard's try box and the playground), and
the project's judging settings (target agreement, risk, extra asks)."""

import json
from typing import Any

from django import forms

from judging.models import JudgingSettings
from reviews.models import MAX_TEXT_CHARS, Project, Sample

MAX_INPUT_FIELDS = 8


def input_fields(project: Project) -> list[str]:
    """The field names of the project's sample inputs (those of its latest sample), or [] for free text."""
    latest = Sample.objects.filter(project=project).order_by("-id").values_list("inputs", flat=True).first()
    if isinstance(latest, dict) and 0 < len(latest) <= MAX_INPUT_FIELDS and all(isinstance(k, str) for k in latest):
        return list(latest)
    return []


def _box(label: str, rows: int) -> forms.CharField:
    return forms.CharField(label=label, max_length=MAX_TEXT_CHARS, widget=forms.Textarea(attrs={"rows": rows}))


class TryJudgeForm(forms.Form):
    """An item to try the judge on, shaped like the project's samples: one box per input field (or free text),
    one output, or outputs A and B for a pairwise project."""

    def __init__(self, project: Project, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.input_names = input_fields(project)
        for name in self.input_names:
            self.fields[f"input__{name}"] = _box(name, 2)
        if not self.input_names:
            self.fields["inputs"] = _box("Input", 3)
        self.pairwise = project.is_pairwise
        if self.pairwise:
            self.fields["output_a"] = _box("Output A", 4)
            self.fields["output_b"] = _box("Output B", 4)
        else:
            self.fields["output"] = _box("Output", 4)

    def item(self) -> dict[str, str]:
        """The item as the judge takes it: inputs as a sample shows them, and its output(s)."""
        data = self.cleaned_data
        if self.input_names:
            inputs = json.dumps(
                {name: data[f"input__{name}"] for name in self.input_names}, indent=2, ensure_ascii=False
            )
        else:
            inputs = data["inputs"]
        if self.pairwise:
            return {"inputs": inputs, "output_a": data["output_a"], "output_b": data["output_b"]}
        return {"inputs": inputs, "output": data["output"]}


class JudgingSettingsForm(forms.ModelForm):  # type: ignore[type-arg]  # django-stubs' ModelForm generic
    """What a run's verdicts must meet to be accepted, and which extra asks they get."""

    class Meta:
        model = JudgingSettings
        fields = ["target_agreement", "risk", "asks", "both_orders", "stability_percent"]
