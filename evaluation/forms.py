from django import forms

from memory.models import EvaluationSettings


class EvaluationSettingsForm(forms.ModelForm):
    class Meta:
        model = EvaluationSettings
        fields = ["group_key", "gate_enabled", "guard_size", "gate_threshold"]
        labels = {
            "group_key": "Group key (sample metadata)",
            "gate_enabled": "Regression gate",
            "guard_size": "Guard set size",
            "gate_threshold": "Hold when guard agreement drops by more than",
        }
