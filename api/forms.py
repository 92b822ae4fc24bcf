from django import forms

from reviews.models import Project


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    project = forms.ModelChoiceField(queryset=Project.objects.none(), required=False, empty_label="All my projects")
    read_only = forms.BooleanField(required=False, label="Read-only")
    expires_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Expires after (days)", help_text="Blank: never."
    )

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = Project.objects.filter(memberships__user=user)
