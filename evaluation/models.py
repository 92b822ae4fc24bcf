"""Evaluations (learning curves on scratch memory) and the regression gate's checks of memory versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from memory.models import MemoryVersion
from reviews.models import Project


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
    checks = models.JSONField(
        default=dict,
        help_text="Order and stability checks on the guard verdicts: {checked, before: {position_bias_rate, "
        "flip_rate}, after: {...}}; rates are null when not checked (the offline judge, or the check is off).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "memory_gatecheck"  # created by the memory app: the table kept its name


class Evaluation(models.Model):
    """A learning-curve evaluation of the aligned judge on scratch memory (evaluation.curves), and its result."""

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
        db_table = "memory_evaluation"  # created by the memory app: the table kept its name
        ordering = ["project", "-id"]

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
