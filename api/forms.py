from typing import Any, cast

from django import forms
from django.contrib.auth.models import User

from reviews.models import Project


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    project = forms.ModelChoiceField(queryset=Project.objects.none(), required=False, empty_label="All my projects")
    read_only = forms.BooleanField(required=False, label="Read-only")
    expires_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Expires after (days)", help_text="Blank: never."
    )

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        project = cast("forms.ModelChoiceField[Project]", self.fields["project"])
        project.queryset = Project.objects.filter(memberships__user=user)
