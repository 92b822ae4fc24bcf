from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordForm, UsernameField
from django.core.exceptions import ValidationError

from reviews import model_servers
from reviews.labels import LabelKind, check_schema
from reviews.models import MAX_REVIEWS_PER_SAMPLE, Project, Role


class ProjectForm(forms.ModelForm):
    categories_text = forms.CharField(
        label="Categories",
        required=False,
        help_text="For a category schema: the labels, comma-separated, in order (e.g. Bad, Acceptable, Excellent).",
    )
    # The site's list, not a free URL: see reviews.model_servers.
    provider_base_url = forms.ChoiceField(
        label="Model server",
        required=False,
        help_text="For an OpenAI-compatible server: one of the servers this site allows (the site's "
        "OPENAI_COMPATIBLE_ALLOWED_BASE_URLS).",
    )

    class Meta:
        model = Project
        fields = [
            "name",
            "criterion",
            "label_kind",
            "scale_min",
            "scale_max",
            "provider",
            "model_name",
            "provider_base_url",
            "retrieval_k",
            "provider_concurrency",
            "cascade_threshold",
            "max_principles",
            "principle_budget_tokens",
            "reviews_per_sample",
            "judge_blind",
            "queue_order",
            "audit_percent",
        ]
        widgets = {"criterion": forms.Textarea(attrs={"rows": 4})}
        labels = {
            "label_kind": "Label schema",
            "retrieval_k": "Retrieved examples (k)",
            "provider_concurrency": "Provider calls in flight",
            "cascade_threshold": "Cascade threshold (learned judge first)",
            "max_principles": "Most principles",
            "audit_percent": "Audit slice (%)",
            "principle_budget_tokens": "Principle tokens per verdict",
            "reviews_per_sample": "Reviews per sample",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default = model_servers.site_default()
        self.fields["provider_base_url"].choices = [
            ("", f"Site default ({default})" if default else "Site default (none set)"),
            *((url, url) for url in model_servers.allowed_base_urls() if url != default),
        ]
        if self.instance.pk:
            self.fields["categories_text"].initial = ", ".join(self.instance.categories)
            # Changing the schema under existing labels would orphan them.
            if self.instance.samples.exists():
                for name in ("label_kind", "scale_min", "scale_max", "categories_text"):
                    self.fields[name].disabled = True
        self.fields["retrieval_k"].widget.attrs.update(min=0, max=50)
        self.fields["provider_concurrency"].widget.attrs.update(min=1, max=64)
        self.fields["cascade_threshold"].widget.attrs.update(min=0.5, max=1, step=0.01)
        self.fields["max_principles"].widget.attrs.update(min=5, max=2000)
        self.fields["principle_budget_tokens"].widget.attrs.update(min=200, max=200_000)
        self.fields["reviews_per_sample"].widget.attrs.update(min=1, max=MAX_REVIEWS_PER_SAMPLE)
        for name in self.DEFAULTED:
            self.fields[name].required = False  # left out (an API client, an old form): kept as they are

    DEFAULTED = (
        "provider_concurrency",
        "max_principles",
        "principle_budget_tokens",
        "reviews_per_sample",
        "queue_order",
        "audit_percent",
    )

    def _or_default(self, name: str) -> int:
        value = self.cleaned_data[name]
        return getattr(self.instance, name) if value is None else value  # a new instance holds the defaults

    def clean_provider_concurrency(self) -> int:
        return self._or_default("provider_concurrency")

    def clean_max_principles(self) -> int:
        return self._or_default("max_principles")

    def clean_queue_order(self) -> str:
        return self.cleaned_data["queue_order"] or self.instance.queue_order

    def clean_audit_percent(self) -> int:
        return self._or_default("audit_percent")

    def clean_principle_budget_tokens(self) -> int:
        return self._or_default("principle_budget_tokens")

    def clean_reviews_per_sample(self) -> int:
        return self._or_default("reviews_per_sample")

    def clean(self):
        data = super().clean()
        kind = data.get("label_kind")
        categories = [c.strip() for c in (data.get("categories_text") or "").split(",") if c.strip()]
        if kind == LabelKind.CATEGORICAL:
            data["categories"] = categories
        else:
            data["categories"] = []
        if kind != LabelKind.NUMERIC:
            data["scale_min"] = data["scale_max"] = None
        if kind:
            try:
                check_schema(kind, data["categories"], data.get("scale_min"), data.get("scale_max"))
            except ValidationError as error:
                self.add_error("label_kind", error)
        return data

    def project_fields(self) -> dict:
        data = self.cleaned_data
        fields = {name: data[name] for name in self.Meta.fields}
        fields["categories"] = data["categories"]
        return fields


class InviteForm(forms.Form):
    identifier = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class FeedbackForm(forms.Form):
    label = forms.CharField(
        max_length=64,
        error_messages={
            "required": "Pick a label first (the digit keys pick one, a agrees with the judge).",
            "max_length": "That is not a label of this project.",
        },
    )
    # Its length limit (MAX_CRITIQUE_CHARS) is checked by reviews.feedback.save_feedback, with the message.
    critique = forms.CharField(required=False, strip=True)
    # A passage of the output quoted in the critique (review.js, the q key); checked by reviews.feedback.quote.
    quote_text = forms.CharField(required=False, strip=True)
    quote_output = forms.CharField(
        required=False, max_length=1, error_messages={"max_length": "Select the passage again."}
    )
    # The revision the reviewer loaded; 0 for new feedback. A mismatch means someone changed it since.
    revision = forms.IntegerField(
        min_value=0,
        required=False,
        error_messages={
            "invalid": "The form is out of date: reload the page.",
            "min_value": "The form is out of date: reload the page.",
        },
    )


class JoinForm(SetPasswordForm):
    """A new account from an invitation link: a username, then Django's own password-setting form."""

    username = UsernameField(max_length=150, help_text="Letters, digits and @ . + - _ only.")
    field_order = ["username", "new_password1", "new_password2"]

    def __init__(self, *args, **kwargs):
        super().__init__(get_user_model()(), *args, **kwargs)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        get_user_model().username_validator(username)
        self.user.username = username  # the password validators compare the password with it
        return username


class DecisionForm(forms.Form):
    label = forms.CharField(max_length=64, error_messages={"required": "Choose the final label."})
    # Its length limit is checked by reviews.adjudication.decide, with the message.
    reason = forms.CharField(error_messages={"required": "Say why: the reason is what teaches the judge."})


class FlagForm(forms.Form):
    on = forms.BooleanField(required=False)
