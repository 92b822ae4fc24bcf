"""Judge runs and verdicts: the aligned judge's work, explainable afterwards."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from memory.models import MemoryVersion
from reviews.models import Project, Sample


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

    class Origin(models.TextChoices):
        SITE = "site", "the site"
        API = "api", "the API"
        COMMAND = "command", "the command line"

    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judge_runs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.REVIEWED)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.SITE)
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
    guarantee = models.JSONField(
        null=True, blank=True, help_text="The selective-judging threshold and its guarantee (agreement.selective)."
    )
    corrected_rates = models.JSONField(
        null=True, blank=True, help_text="Label rates over unreviewed verdicts, corrected by the audit slice (PPI++)."
    )
    checks = models.JSONField(
        null=True, blank=True, help_text="Order and stability checks: position-bias rate, flip rate, counts."
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When its chunks were queued.")
    started_at = models.DateTimeField(null=True, blank=True, help_text="When a worker first took a chunk.")
    progress_at = models.DateTimeField(null=True, blank=True, help_text="When the last verdict was stored.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "memory_judgerun"  # created by the memory app: the table kept its name
        ordering = ["project", "-id"]
        indexes = [models.Index(fields=["project", "status"], name="judgerun_by_status")]

    @property
    def percent(self) -> int:
        return int(100 * (self.done + self.failed) / self.total) if self.total else 100

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def scope_name(self) -> str:
        """The scope without its explanation: "Reviewed samples"."""
        return str(self.get_scope_display()).split(" (")[0]

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
    tier = models.CharField(
        max_length=10, blank=True, help_text="Which tier decided: same item, learned, vote, or llm; empty before."
    )
    probability = models.FloatField(null=True, blank=True, help_text="The decided label's probability, when known.")
    probabilities = models.JSONField(default=dict, blank=True, help_text="The learned judge's probability per label.")
    signals = models.JSONField(default=dict, help_text="The named confidence signals (agreement.calibration).")
    confidence = models.FloatField(
        null=True, blank=True, help_text="Calibrated probability that the experts agree; set when the run ends."
    )
    escalated = models.BooleanField(default=False, help_text="Below the run's threshold: an expert should see it.")
    checks = models.JSONField(
        default=dict, help_text='Order and stability checks: {"order": "consistent"|"flipped"|"missing", ...}.'
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "memory_judgement"  # created by the memory app: the table kept its name
        constraints = [models.UniqueConstraint(fields=["run", "sample"], name="one_judgement_per_run_and_sample")]
        indexes = [models.Index(fields=["sample", "-id"], name="judgement_latest_by_sample")]
        ordering = ["-id"]

    @property
    def position_consistent(self) -> bool | None:
        """Whether the verdict held with the two outputs swapped; None when that was not checked (or failed)."""
        order = (self.checks or {}).get("order")
        return {"consistent": True, "flipped": False}.get(order) if order else None


class JudgingSettings(models.Model):
    """How a project's verdicts are checked and which of them an expert should see (one row per project)."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="judging_settings")
    target_agreement = models.FloatField(
        default=0.9,
        validators=[MinValueValidator(0.5), MaxValueValidator(0.999)],
        help_text="Accepted verdicts must agree with the experts at least this often.",
    )
    risk = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.001), MaxValueValidator(0.5)],
        help_text="The chance allowed that the guarantee does not hold.",
    )
    asks = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Ask an LLM judge this many times per item; their agreement is a confidence signal.",
    )
    both_orders = models.BooleanField(
        default=True, help_text="Pairwise, LLM judges: ask with the outputs swapped too; a flip is escalated."
    )
    stability_percent = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(100)],
        help_text="Re-ask this share of verdicts (LLM judges) and report how often the verdict flips.",
    )

    def __str__(self) -> str:
        return f"judging settings of {self.project_id}"

    @classmethod
    def of(cls, project: Project) -> JudgingSettings:
        """The project's settings, or the defaults (unsaved) when it has none."""
        return cls.objects.filter(project=project).first() or cls(project=project)


class LearnedJudge(models.Model):
    """A project's learned local judge (judging/learned.py): the trained estimator, stored in the database so any
    worker on any host loads the same one, with what it was trained for and how training went."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="learned_judge")
    estimator = models.BinaryField(blank=True, help_text="The pickled judging.learned_model.LearnedModel; empty: none.")
    schema = models.CharField(max_length=64, blank=True, help_text="Fingerprint of the label schema it answers in.")
    memory_version = models.PositiveIntegerField(null=True, blank=True, help_text="The memory version it learned.")
    labels = models.PositiveIntegerField(default=0, help_text="How many final labels it learned from.")
    stats = models.JSONField(default=dict, help_text="Training figures: per-label counts, held-out accuracy, seconds.")
    trained_at = models.DateTimeField(null=True, blank=True)
    not_trained = models.TextField(blank=True, help_text="Why no model is in use (too few labels, …).")
    failure = models.TextField(blank=True, help_text="The last training's error; the previous model stays in use.")
    failed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"learned judge of {self.project_id} ({self.labels} labels)"
