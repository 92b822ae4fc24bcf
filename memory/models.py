"""Semantic memory: principles, where each came from, and numbered versions of the whole set.

Episodic memory lives in Chroma and is derived from reviews.Feedback; nothing here is needed to rebuild it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviews.models import Feedback, Project, Sample


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
        # The regression gate (memory.gate) held it: guard agreement dropped; the judge keeps the last OK version.
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
        """What django-auditlog stores with this principle's log entries; memory.semantic.new_version adds the
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


class JudgeRun(models.Model):
    """A batch of samples judged by the aligned judge, cut into chunks that any worker can take.

    The samples are fixed when the run is created (`sample_ids`, in id order), so a chunk is an index into
    that list and redelivering one never changes what it covers.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Scope(models.TextChoices):
        REVIEWED = "reviewed", "Reviewed samples (measures agreement with the experts)"
        UNREVIEWED = "unreviewed", "Unreviewed samples"
        ALL = "all", "All samples"
        QUEUE = "queue", "The queue filter's samples"
        ITEMS = "items", "Items posted through the API"

    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judge_runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.REVIEWED)
    scope_detail = models.CharField(max_length=300, blank=True, help_text="The queue filter, for that scope.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    sample_ids = models.JSONField(default=list)
    chunk_size = models.PositiveIntegerField(default=32)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    abstained = models.PositiveIntegerField(default=0)
    usage = models.JSONField(default=dict)
    memory_version = models.ForeignKey(
        MemoryVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    figures = models.JSONField(null=True, blank=True, help_text="Agreement with the experts, when the run ended.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When its chunks were queued.")
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker first took a chunk.")
    progress_at = models.DateTimeField(null=True, blank=True, help_text="When the last verdict was stored.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-id"]
        indexes = [models.Index(fields=["project", "status"], name="judgerun_by_status")]

    @property
    def percent(self) -> int:
        return int(100 * (self.done + self.failed) / self.total) if self.total else 100

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def chunk_count(self) -> int:
        return -(-self.total // self.chunk_size)

    def chunk(self, index: int) -> list[int]:
        return self.sample_ids[index * self.chunk_size : (index + 1) * self.chunk_size]


class Judgement(models.Model):
    """One verdict of the aligned judge on a sample, with what it used: explainable afterwards."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgements")
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="judgements")
    run = models.ForeignKey(JudgeRun, null=True, blank=True, on_delete=models.CASCADE, related_name="judgements")
    value = models.CharField(max_length=64, blank=True, help_text="Empty: the judge abstained, or failed (see error).")
    rationale = models.TextField(blank=True)
    error = models.TextField(blank=True, help_text="Why the provider gave no usable verdict; retryable.")
    memory_version = models.ForeignKey(
        MemoryVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    principle_ids = models.JSONField(default=list, help_text="The principles in its working memory.")
    retrieved = models.JSONField(default=list, help_text="Feedback ids of the retrieved examples, most similar first.")
    similarities = models.JSONField(default=list, help_text="The retrieved examples' similarities, in that order.")
    provider = models.CharField(max_length=20)
    model = models.CharField(max_length=100)
    usage = models.JSONField(default=dict)
    latency_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "sample"], name="one_judgement_per_run_and_sample")]
        indexes = [models.Index(fields=["sample", "-id"], name="judgement_latest_by_sample")]
        ordering = ["-id"]


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
    guard_size = models.PositiveIntegerField(default=30)
    gate_threshold = models.FloatField(
        default=0.05, help_text="Hold a version whose guard agreement drops by more than this."
    )
    guard_sample_ids = models.JSONField(default=list, help_text="Chosen at random once, then fixed.")
    # Not an evaluation setting, but the project's one row of memory settings: the episodic memory's conflicts page.
    conflict_similarity = models.FloatField(
        default=0.9, help_text="Examples on samples at least this alike with different labels are conflicts."
    )


class GateCheck(models.Model):
    """The regression gate's comparison of a new memory version with the last good one on the guard set."""

    version = models.OneToOneField(MemoryVersion, on_delete=models.CASCADE, related_name="gate_check")
    compared_with = models.ForeignKey(MemoryVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    guard_size = models.PositiveIntegerField()
    agreement_before = models.FloatField()
    agreement_after = models.FloatField()
    threshold = models.FloatField()
    held = models.BooleanField()
    flipped = models.JSONField(default=list, help_text="[{sample_id, external_id, expert, before, after}]")
    added = models.JSONField(default=list, help_text="Principles in the new version only, as [{id, text}].")
    removed = models.JSONField(default=list, help_text="Principles in the good version only.")
    usage = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)


class Evaluation(models.Model):
    """A learning-curve evaluation of the aligned judge on scratch memory (memory.evaluation), and its result."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="evaluations")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    options = models.JSONField(default=dict, help_text="seed, test fraction, shards, variants, prequential, limit")
    group_key = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=100, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True, help_text="The document `manage.py evaluate --json` prints.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "-id"]

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
