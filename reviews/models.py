"""Projects, memberships, samples and the experts' feedback on them: the annotation side of MemAlign."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from reviews import figures
from reviews.labels import LabelKind, label_choices
from reviews.model_servers import validate_base_url
from reviews.rendering import span_matches

MAX_TEXT_CHARS = 100_000  # one input, output or rationale
MAX_CRITIQUE_CHARS = 5_000


class UnicodeJSONEncoder(DjangoJSONEncoder):
    """Store JSON with its characters as they are (not \\u escapes), so text search finds "café" on SQLite too."""

    def __init__(self, *args, **kwargs):
        kwargs["ensure_ascii"] = False
        super().__init__(*args, **kwargs)


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    REVIEWER = "reviewer", "Reviewer"
    OWNER = "owner", "Owner"

    @property
    def rank(self) -> int:
        """Return the role's place in viewer < reviewer < owner: each carries every right of the ones below."""
        return list(Role).index(self)


class QueueOrder(models.TextChoices):
    AUTO = "auto", "What teaches most first, once the judge has memory"
    TEACH = "teach", "What teaches most first"
    PLAIN = "plain", "Import order"


MAX_REVIEWS_PER_SAMPLE = 5  # overlap: more reviews of one sample than this is not a review queue any more


class Project(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    criterion = models.TextField(help_text="The judge's instructions: what makes an output good or bad.")
    label_kind = models.CharField(max_length=20, choices=LabelKind.choices, default=LabelKind.PASS_FAIL)
    categories = models.JSONField(default=list, blank=True)
    scale_min = models.IntegerField(null=True, blank=True)
    scale_max = models.IntegerField(null=True, blank=True)
    provider = models.CharField(
        max_length=20,
        blank=True,
        choices=[
            ("offline", "Offline (no LLM)"),
            ("anthropic", "Anthropic Claude"),
            ("openai_compatible", "OpenAI-compatible server (vLLM, Ollama, …)"),
        ],
        help_text="Blank: the site default.",
    )
    provider_base_url = models.URLField(
        blank=True,
        help_text="OpenAI-compatible servers: the API's base URL, e.g. http://gpu-box:8000/v1. Blank: "
        "the site default (OPENAI_COMPATIBLE_BASE_URL).",
    )
    model_name = models.CharField(max_length=100, blank=True, help_text="Blank: the provider's default model.")
    retrieval_k = models.PositiveSmallIntegerField(
        default=5,
        validators=[
            MinValueValidator(0, "Retrieve between 0 and 50 examples."),
            MaxValueValidator(50, "Retrieve between 0 and 50 examples."),
        ],
    )
    cascade_threshold = models.FloatField(
        null=True,
        blank=True,
        validators=[
            MinValueValidator(0.5, "The cascade's threshold is a probability from 0.5 to 1."),
            MaxValueValidator(1.0, "The cascade's threshold is a probability from 0.5 to 1."),
        ],
        help_text="LLM providers: when the learned local judge is at least this sure, its verdict stands and no "
        "model call is made. Blank: off (every verdict asks the model).",
    )
    provider_concurrency = models.PositiveSmallIntegerField(
        default=8,
        validators=[
            MinValueValidator(1, "Allow between 1 and 64 provider calls in flight."),
            MaxValueValidator(64, "Allow between 1 and 64 provider calls in flight."),
        ],
        help_text="Most provider calls in flight at once for this project, across all workers.",
    )
    max_principles = models.PositiveSmallIntegerField(
        default=60,
        validators=[
            MinValueValidator(5, "Keep between 5 and 2,000 principles."),
            MaxValueValidator(2000, "Keep between 5 and 2,000 principles."),
        ],
        help_text="The semantic memory's size: consolidation keeps the active principles within it.",
    )
    principle_budget_tokens = models.PositiveIntegerField(
        default=4_000,
        validators=[
            MinValueValidator(200, "Allow between 200 and 200,000 principle tokens per verdict."),
            MaxValueValidator(200000, "Allow between 200 and 200,000 principle tokens per verdict."),
        ],
        help_text="The most principle tokens in one verdict's working memory; beyond it the ones most relevant to "
        "the item are chosen (pinned ones always).",
    )
    reviews_per_sample = models.PositiveSmallIntegerField(
        default=1,
        validators=[
            MinValueValidator(1, f"Ask for between 1 and {MAX_REVIEWS_PER_SAMPLE} reviews per sample."),
            MaxValueValidator(
                MAX_REVIEWS_PER_SAMPLE, f"Ask for between 1 and {MAX_REVIEWS_PER_SAMPLE} reviews per sample."
            ),
        ],
        help_text="Overlap: a sample stays in reviewers' queue until this many of them reviewed it (1 to 5). Two "
        "or more measure how much the experts agree with each other.",
    )
    queue_order = models.CharField(
        max_length=10,
        choices=QueueOrder.choices,
        default=QueueOrder.AUTO,
        help_text="The review queue's default order; reviewers can still pick the other.",
    )
    audit_percent = models.PositiveSmallIntegerField(
        default=20,
        validators=[
            MinValueValidator(0, "The audit slice is a share between 0 and 100 %%."),
            MaxValueValidator(100, "The audit slice is a share between 0 and 100 %%."),
        ],
        help_text="In the teaching order, this share of samples (0-100 %) is drawn at random as an audit slice, "
        "so agreement measured on it stays unbiased.",
    )
    # On for new projects; the migration that added it left existing projects as they were (verdict shown).
    judge_blind = models.BooleanField(
        default=True,
        verbose_name="Judge-blind first pass",
        help_text="Reviewers see the judge's verdict and rationale only after choosing their own label, so the "
        "labels are the experts' view, not the judge's influence.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("project-overview", args=[self.slug])

    def clean(self) -> None:
        try:
            validate_base_url(self.provider_base_url)
        except ValidationError as error:
            raise ValidationError({"provider_base_url": error.messages}) from None

    @property
    def label_choices(self) -> list[str]:
        return label_choices(self.label_kind, self.categories, self.scale_min, self.scale_max)

    @property
    def is_pairwise(self) -> bool:
        return self.label_kind == LabelKind.PAIRWISE

    def schema_description(self) -> str:
        if self.label_kind == LabelKind.NUMERIC:
            return f"Numeric scale {self.scale_min}..{self.scale_max}"
        return f"{self.get_label_kind_display()}: {', '.join(self.label_choices)}"


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.REVIEWER)
    # May decide the final label where reviewers disagree (owners always may).
    adjudicator = models.BooleanField(default=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]
        ordering = ["project", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


class Invitation(models.Model):
    """An owner's offer of a role in a project; the person becomes a member only when they accept.

    `identifier` is what the owner typed (a username or email, lower-cased); `user` is the account it named,
    if exactly one did. The owner is told the same thing either way, so inviting never reveals who has an
    account; an invitation without an account waits (a one-time link to create one can build on this).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    identifier = models.CharField(max_length=254)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.REVIEWER)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # The one-time link (reviews.invitations): only the SHA-256 of its token is kept; "" = no link issued.
    token_hash = models.CharField(max_length=64, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "identifier"], name="one_invitation_per_identifier"),
            models.UniqueConstraint(
                fields=["token_hash"], condition=~models.Q(token_hash=""), name="one_invitation_per_token"
            ),
        ]
        ordering = ["project", "-created_at", "id"]

    def __str__(self) -> str:
        return f"{self.identifier} invited to {self.project} ({self.role})"


class ImportRun(models.Model):
    """One import, written in short transactions so that others' writes are never held up for long.

    A run that failed, or whose process died while writing, is undone by `reviews.import_writing.discard_unfinished`:
    a crashed import leaves nothing behind (but samples someone already reviewed, which are kept).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        READING = "reading", "Reading and checking the file"
        WRITING = "writing", "Writing"
        DONE = "done", "Done"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    FINISHED = (Status.DONE, Status.REJECTED, Status.FAILED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WRITING)
    upload = models.CharField(
        max_length=100, blank=True, help_text="The stored upload under DATA_DIR/imports, until the import ends."
    )
    total = models.PositiveIntegerField(default=0, help_text="Rows in the file (known once it is checked).")
    written = models.PositiveIntegerField(default=0, help_text="Rows written or found already present.")
    summary = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="[line or null, reason] pairs, the first few.")
    total_errors = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename or 'import'} into {self.project} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        return 100 if self.status == self.Status.DONE else (100 * self.written // self.total if self.total else 0)


def _writing_runs(project: Project) -> list[int]:
    return list(ImportRun.objects.filter(project=project, status=ImportRun.Status.WRITING).values_list("id", flat=True))


class SampleQuerySet(models.QuerySet):
    def writing_runs(self, project: Project) -> list[int]:
        """The project's imports still writing, from the figures cache: every page asks, and a run starting or
        ending writing forgets the project's figures (reviews.import_writing)."""
        return figures.cached(project.pk, "writing-runs", lambda: _writing_runs(project))

    def visible(self, project: Project) -> models.QuerySet:
        """The project's samples, without those an unfinished import is still writing (it may yet be undone).

        No import running, no extra condition: the queue's index-only plans stay as they are.
        """
        qs = self.filter(project=project)
        writing = self.writing_runs(project)
        return qs.exclude(import_run__in=writing) if writing else qs


# A sample's content as imported, exported and moved between projects (everything but its id, external id and
# bookkeeping): one list for the import's comparison, the dataset export and the portable judge document.
SAMPLE_CONTENT_FIELDS = (
    "inputs",
    "outputs",
    "output_a",
    "output_b",
    "expectations",
    "metadata",
    "judge_value",
    "judge_rationale",
)


class Sample(models.Model):
    """One judge output to review, with the base judge's verdict as imported."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="samples")
    external_id = models.CharField(max_length=200)
    inputs = models.JSONField(
        encoder=UnicodeJSONEncoder, help_text="What the judged system was given: a JSON object or a string."
    )
    outputs = models.TextField(blank=True)
    output_a = models.TextField(blank=True)
    output_b = models.TextField(blank=True)
    expectations = models.JSONField(null=True, blank=True, encoder=UnicodeJSONEncoder)
    metadata = models.JSONField(default=dict, blank=True, encoder=UnicodeJSONEncoder)
    judge_value = models.CharField(max_length=64, blank=True)
    judge_rationale = models.TextField(blank=True)
    # The import that wrote it: what to undo if that import never finishes.
    import_run = models.ForeignKey(ImportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="samples")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SampleQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "external_id"], name="unique_external_id")]
        indexes = [models.Index(fields=["project", "id"], name="sample_queue_order")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.external_id}"

    def get_absolute_url(self) -> str:
        return reverse("sample-review", args=[self.project.slug, self.pk])

    def inputs_text(self) -> str:
        """Return the inputs as text: a string as is, anything else as indented JSON."""
        if isinstance(self.inputs, str):
            return self.inputs
        return json.dumps(self.inputs, indent=2, ensure_ascii=False)

    def output_by_name(self, which: str) -> str:
        """Return the output named `which`: "" the only one, "a" or "b" one of a pair."""
        return {"": self.outputs, "a": self.output_a, "b": self.output_b}[which]

    def output_text(self) -> str:
        """Return what the judge judged, as one text (both outputs, labelled, for pairwise)."""
        if self.output_a or self.output_b:
            return f"Output A:\n{self.output_a}\n\nOutput B:\n{self.output_b}"
        return self.outputs


REMOVED_ACCOUNT = "(removed account {})"  # parentheses: Django's username validator lets no one register it
# Imported feedback in the name of someone other than the importer is theirs, not an account's: it goes to an
# inactive placeholder "<name> (external)" (unregistrable, as above), its own reviewer in the agreement figures.
EXTERNAL_REVIEWER = "{} (external)"
MAX_EXTERNAL_REVIEWER = 150 - len(EXTERNAL_REVIEWER.format(""))  # a username's length


def keep_as_removed_account(collector, field, sub_objs, using) -> None:
    """on_delete for feedback authors: when an account is deleted (the admin, a script), its feedback stays in its
    projects, moved to an inactive "(removed account N)" placeholder so the author shows as removed. An owner who
    wants it gone unaligns it when removing the member (reviews.projects.remove_member)."""
    from django.contrib.auth import get_user_model

    by_author: dict[int, list] = {}
    for feedback in sub_objs:
        by_author.setdefault(feedback.author_id, []).append(feedback)
    for author_id, feedback in by_author.items():
        placeholder, created = (
            get_user_model()
            .objects.using(using)
            .get_or_create(username=REMOVED_ACCOUNT.format(author_id), defaults={"is_active": False})
        )
        if created:
            placeholder.set_unusable_password()
            placeholder.save(update_fields=["password"])
        collector.add_field_update(field, placeholder, feedback)


class Feedback(models.Model):
    """A reviewer's label and critique on a sample. Deleting it unaligns the judge from it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="feedback")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="feedback")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=keep_as_removed_account, related_name="feedback")
    label = models.CharField(max_length=64)
    critique = models.TextField(blank=True)
    agrees_with_judge = models.BooleanField(
        null=True, help_text="Whether the label equals the base judge's verdict; empty when the sample has none."
    )
    # Bumped on every edit: refuses stale edits, and tells the memory which content it has learned from.
    revision = models.PositiveIntegerField(default=1)
    # Set on feedback written by an import (possibly in another member's name): who imported it, and when.
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    imported_at = models.DateTimeField(null=True, blank=True)
    # Whether the judge's verdict was on screen when the label was chosen (Project.judge_blind); None: not known
    # (given before it was recorded, imported, or through the API).
    verdict_shown = models.BooleanField(null=True, blank=True)
    # Left out of both memories by an owner (memory.unalign.exclude): the label still counts in agreement figures.
    excluded_from_memory = models.BooleanField(default=False)
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A passage of the output the reviewer quoted into the critique (reviews.feedback.quote): the text as they
    # selected it, which output ("" the only one, "a" or "b"), and its character span in that output's raw text
    # (empty when it could not be found there). An edit of the sample can leave the span stale: quote_matches.
    quote_text = models.TextField(blank=True)
    quote_output = models.CharField(max_length=1, blank=True, choices=[("", "output"), ("a", "A"), ("b", "B")])
    quote_start = models.PositiveIntegerField(null=True, blank=True)
    quote_end = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "author"], name="one_feedback_per_reviewer")]
        indexes = [
            models.Index(fields=["project", "-updated_at"], name="feedback_recent"),
            models.Index(fields=["project", "agrees_with_judge", "sample"], name="feedback_agreement"),
            # The queue: "reviewed by me" (counts, and the anti-join of "needs my review", read in sample order)
            # and "reviewed by anyone" (counts) are answered from these indexes.
            models.Index(fields=["author", "project", "sample"], name="feedback_by_author"),
            models.Index(fields=["project", "sample"], name="feedback_by_sample"),
        ]
        ordering = ["-updated_at", "-id"]
        verbose_name_plural = "feedback"

    def __str__(self) -> str:
        return f"{self.author} on {self.sample}: {self.label}"

    def quote_matches(self) -> bool:
        """Whether the quoted span of the output still reads as the quote (not once the sample was edited)."""
        raw = self.sample.output_by_name(self.quote_output)
        return bool(self.quote_text) and span_matches(raw, self.quote_start, self.quote_end, self.quote_text)


def agreement(label: str, judge_value: str) -> bool | None:
    """Return whether an expert label agrees with the judge's verdict, or None when there is no verdict."""
    return label == judge_value if judge_value else None


class QueuePriority(models.Model):
    """A sample's place in the "what teaches most first" order, computed in the background by the memory app.

    `rank` is the position (0 first) among the project's samples when the order was last computed; `audit`
    marks the random slice interleaved in it, whose reviews measure agreement without the order's bias. Samples
    without a row (imported since) come after every ranked one, in id order.
    """

    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, primary_key=True, related_name="priority")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveIntegerField()
    score = models.FloatField(default=0.0)
    audit = models.BooleanField(default=False)
    needs_expert = models.BooleanField(
        default=False, help_text="The judge's verdict on it was escalated: it is served before everything else."
    )
    reasons = models.JSONField(default=list, blank=True, help_text="Why it ranks where it does, in words.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["project", "rank"], name="queue_priority_rank")]

    def __str__(self) -> str:
        return f"{self.sample_id}: rank {self.rank}{' (audit)' if self.audit else ''}"


class ReviewClaim(models.Model):
    """A reviewer was served a sample that needs more reviews: one of its slots is theirs for a while.

    reviews.overlap takes claims under a lock on the sample, so two reviewers are never both given its last slot.
    """

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="claims")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sample", "user"], name="one_claim_per_reviewer")]


class Decision(models.Model):
    """The final label of a sample whose reviewers disagreed, decided by an owner or adjudicator, with a reason.

    `feedback` is the row that carries the decision into the memory (authored by the site's decisions account,
    reviews.adjudication.decisions_account): the reason is the critique that teaches. Feedback of another label
    on the sample is overruled: the memory leaves it out, as if unaligned, while the decision stands.
    Undoing a decision deletes its feedback row, and with it the decision.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="decisions")
    sample = models.OneToOneField(Sample, on_delete=models.CASCADE, related_name="decision")
    label = models.CharField(max_length=64)
    reason = models.TextField()
    # Deleting this row (an owner deleting the team's feedback on the review page) undoes the decision with it.
    feedback = models.OneToOneField(Feedback, null=True, on_delete=models.CASCADE, related_name="decision")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at", "-id"]

    def __str__(self) -> str:
        return f"{self.sample}: {self.label}"
