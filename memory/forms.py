from django import forms

from reviews.models import MAX_TEXT_CHARS


class TryJudgeForm(forms.Form):
    inputs = forms.CharField(max_length=MAX_TEXT_CHARS, widget=forms.Textarea(attrs={"rows": 3}))
    output = forms.CharField(max_length=MAX_TEXT_CHARS, widget=forms.Textarea(attrs={"rows": 4}))


class PrincipleForm(forms.Form):
    text = forms.CharField(max_length=1_000, widget=forms.Textarea(attrs={"rows": 2}))
