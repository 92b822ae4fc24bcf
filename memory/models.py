"""Semantic memory: principles, where each came from, and numbered versions of the whole set.

Episodic memory lives in Chroma and is derived from reviews.Feedback; nothing here is needed to rebuild it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from reviews.models import Feedback, Project, Sample


def validate_drop(value: float) -> None:
    if not 0 <= value < 1:
        raise ValidationError("The threshold is a drop in agreement between 0 and 1, e.g. 0.05.")


class MemoryVersion(models.Model):
    """A numbered snapshot of a project's semantic memory, with what made it and what it cost."""

    class Trigger(models.TextChoices):
        DISTILL = "distill", "New feedback distilled"
        UNALIGN = "unalign", "Feedback removed or edited"
        CONSOLIDATE = "consolidate", "Consolidation"
        MANUAL = "manual", "Edited by hand"  # added, edited, pinned, unpinned, retired or restored by an owner
        ROLLBACK = "rollback", "Rollback"  # an older version's principles restored (memory.principles.rollback)
        IMPORT = "import", "Imported"  # principles brought in with a judge document

    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"
        # The regression gate (evaluation.gate) held it: guard agreement dropped; the judge keeps the last OK version.
        HELD = "held", "Held by the regression gate"
        DISCARDED = "discarded", "Discarded"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memory_versions")
    number = models.PositiveIntegerField()
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    # Who made it: a person for edits, rollbacks, bulk unaligns and imports; empty when a worker did (the
    # provider and model below then say what).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK)
    error = models.TextField(blank=True)
    # The active principles at this version, as [{"id", "text", "label", "pinned"}] (label and pinned since
    # migration 0008): verdicts cite the version they used, diffs and rollbacks read it.
    principles = models.JSONField(default=list)
    summary = models.CharField(max_length=300, blank=True)
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=100)
    usage = models.JSONField(default=dict)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="one_number_per_version")]
        ordering = ["project", "-number"]

    def __str__(self) -> str:
        return f"{self.project.slug} v{self.number}"

    def get_additional_data(self) -> dict:
        """What django-auditlog stores with this version's log entries: the audit page filters on it."""
        return {"project": self.project_id, "from_version": self.number - 1, "to_version": self.number}


class Principle(models.Model):
    class Origin(models.TextChoices):
        DISTILLED = "distilled", "Distilled from critiques"
        MANUAL = "manual", "Written by hand"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="principles")
    text = models.TextField()
    # The label the principle leads to ("" when it applies whichever label is right). Its sources must agree:
    # distillation credits, merges and deduplicates only within one label.
    label = models.CharField(max_length=64, blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.DISTILLED)
    pinned = models.BooleanField(
        default=False, help_text="Pinned principles are never merged, rewritten or retired automatically."
    )
    retired = models.BooleanField(default=False)
    retired_reason = models.CharField(max_length=200, blank=True)
    created_in = models.ForeignKey(MemoryVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not stored: what the pages listing principles attach to the ones they show (their visible sources' count
    # and authors, and how many sources were removed), set by memory.principle_views.add_source_figures.
    source_count: int
    authors: list[str]
    lost: int

    class Meta:
        ordering = ["project", "id"]
        indexes = [models.Index(fields=["project", "retired"], name="principle_active")]

    def __str__(self) -> str:
        return self.text[:80]

    def get_additional_data(self) -> dict:
        """What django-auditlog stores with this principle's log entries; memory.versions.new_version adds the
        version numbers the change went from and to once that version is written."""
        return {"project": self.project_id}


class PrincipleSource(models.Model):
    """Links a principle to a critique it was distilled from, at the revision it was learned.

    When the feedback is deleted the link stays with `feedback` NULL, and a revision mismatch marks an edit:
    either way the principle must be re-derived from what remains, so nothing learned from it lingers.
    """

    principle = models.ForeignKey(Principle, on_delete=models.CASCADE, related_name="sources")
    feedback = models.ForeignKey(Feedback, null=True, on_delete=models.SET_NULL, related_name="principle_links")
    feedback_revision = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["principle", "feedback"], condition=models.Q(feedback__isnull=False), name="one_link_per_source"
            )
        ]


class DistilledFeedback(models.Model):
    """Marks a feedback revision as sent to distillation, so only new or edited feedback is sent again."""

    feedback = models.OneToOneField(Feedback, on_delete=models.CASCADE, related_name="distilled")
    revision = models.PositiveIntegerField()
    version = models.ForeignKey(MemoryVersion, null=True, on_delete=models.SET_NULL, related_name="+")


class Contradiction(models.Model):
    """Two active principles that disagree; a human decides which stays."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="contradictions")
    first = models.ForeignKey(Principle, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Principle, on_delete=models.CASCADE, related_name="+")
    found_in = models.ForeignKey(MemoryVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    resolved = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["first", "second"], name="one_contradiction_per_pair")]


class SampleVector(models.Model):
    """A sample's embedding, made once in background batches after import and reused everywhere after:
    for its feedback's episodic entry, for judging it, for retrieval. Derived data: rebuilt when missing."""

    sample = models.OneToOneField(Sample, primary_key=True, on_delete=models.CASCADE, related_name="vector")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(
        max_length=64, help_text="The content it was made from: changed content is embedded again."
    )
    scheme = models.PositiveSmallIntegerField()
    vector = models.BinaryField()  # float32, little-endian, unit length
    # Each part's own vector (input, then the output or outputs A and B; zeros for an empty part), float32: the
    # learned judge's features. Empty until first needed (rows made before it existed).
    parts = models.BinaryField(default=b"", blank=True)


class PrincipleVector(models.Model):
    """A principle text's embedding, made once (in the background after a version is written) and read by every
    process after: keyed by the text's SHA-256, so an unchanged text keeps its vector across versions and
    restarts. The hash covers the embedding model's name too. Derived data: made again when missing
    (memory.principle_vectors)."""

    text_hash = models.CharField(max_length=64, primary_key=True)
    vector = models.BinaryField()  # float32, little-endian, unit length
    created_at = models.DateTimeField(auto_now_add=True)


class EvaluationSettings(models.Model):
    """A project's evaluation settings: the split's group key, and the regression gate for memory versions."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="evaluation_settings")
    group_key = models.CharField(
        max_length=100,
        blank=True,
        help_text="A sample metadata key; samples sharing its value stay on one side of the split.",
    )
    gate_enabled = models.BooleanField(
        default=False, help_text="Re-judge the guard set on every new version (costs model calls)."
    )
    guard_size = models.PositiveIntegerField(
        default=30,
        validators=[
            MinValueValidator(1, "The guard set holds 1 to 1,000 samples."),
            MaxValueValidator(1000, "The guard set holds 1 to 1,000 samples."),
        ],
    )
    gate_threshold = models.FloatField(
        default=0.05,
        validators=[validate_drop],
        help_text="Hold a version whose guard agreement drops by more than this.",
    )
    guard_sample_ids = models.JSONField(default=list, blank=True, help_text="Chosen at random once, then fixed.")
    # Not an evaluation setting, but the project's one row of memory settings: the episodic memory's conflicts page.
    conflict_similarity = models.FloatField(
        default=0.9,
        validators=[
            MinValueValidator(0.0, "Similarity is between 0 and 1."),
            MaxValueValidator(1.0, "Similarity is between 0 and 1."),
        ],
        help_text="Examples on samples at least this alike with different labels are conflicts.",
    )
