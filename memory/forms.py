from django import forms

from reviews.models import Project


class PrincipleAddForm(forms.Form):
    """A principle written by hand: its text, the label it leads to (or none), pinned or not."""

    text = forms.CharField(max_length=1_000, widget=forms.Textarea(attrs={"rows": 2}))
    label = forms.ChoiceField(required=False)
    pinned = forms.BooleanField(required=False, initial=True)

    def __init__(self, project: Project, *args, **kwargs):
        super().__init__(*args, **kwargs)
        label = self.fields["label"]
        assert isinstance(label, forms.ChoiceField)
        label.choices = [("", "any label")] + [(c, c) for c in project.label_choices]


class PrincipleEditForm(forms.Form):
    text = forms.CharField(max_length=1_000, widget=forms.Textarea(attrs={"rows": 3}))
