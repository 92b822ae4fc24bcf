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

    def clean_guard_size(self):
        size = self.cleaned_data["guard_size"]
        if not 1 <= size <= 1000:
            raise forms.ValidationError("The guard set holds 1 to 1,000 samples.")
        return size

    def clean_gate_threshold(self):
        threshold = self.cleaned_data["gate_threshold"]
        if not 0 <= threshold < 1:
            raise forms.ValidationError("The threshold is a drop in agreement between 0 and 1, e.g. 0.05.")
        return threshold
