"""The API's request and response shapes (they make the OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import AfterValidator, field_validator

from reviews.models import MAX_CRITIQUE_CHARS, MAX_TEXT_CHARS

MAX_PAGE = 500
MAX_ID = 2**63 - 1  # the largest id the database holds: larger ones are refused, not sent to it


def _no_nul(value: str) -> str:
    # PostgreSQL refuses a NUL character in any text, stored or compared: a 400 here, not a 500 from the database.
    if "\x00" in value:
        raise ValueError("contains a NUL character (\\u0000), which no text here may hold; remove it")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""A string a request's JSON body sends (the path and query are checked by memalign_site.middleware)."""


class ErrorItem(Schema):
    field: str | None = None
    line: int | None = None
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[ErrorItem]


class PageQuery(Schema):
    after: int | None = Field(
        None, ge=0, le=MAX_ID, description="Continue after this id (the previous page's next_after)."
    )
    limit: int = Field(50, ge=1, le=MAX_PAGE)


class ProjectOut(Schema):
    slug: str
    name: str
    criterion: str
    label_kind: str
    labels: list[str]
    scale_min: int | None
    scale_max: int | None
    provider: str
    model_name: str
    retrieval_k: int
    role: str


class ProjectPage(Schema):
    items: list[ProjectOut]
    next_after: int | None


class QuoteOut(Schema):
    text: str = Field(description="The passage of the output the reviewer quoted into the critique.")
    output: Literal["", "a", "b"] = Field(description='Which output: "" the only one, "a" or "b" (pairwise).')
    start: int | None = Field(description="Where the passage starts in the raw output (null: not found there).")
    end: int | None
    matches: bool = Field(description="Whether the span still reads as the passage (false once the sample changed).")


class QuoteIn(Schema):
    text: Text = Field(..., max_length=MAX_CRITIQUE_CHARS, description="A passage of the output, as selected.")
    output: Literal["", "a", "b"] = Field("", description='Which output: "" the only one, "a" or "b" (pairwise).')


class FeedbackOut(Schema):
    id: int
    sample_id: int
    external_id: str
    reviewer: str
    label: str
    critique: str
    quote: QuoteOut | None
    agrees_with_judge: bool | None
    revision: int
    created_at: datetime
    updated_at: datetime


class FeedbackPage(Schema):
    items: list[FeedbackOut]
    next_after: int | None


class FeedbackQuery(PageQuery):
    reviewer: str | None = Field(
        None, max_length=150, description='A reviewer\'s username, or an imported "name (external)".'
    )
    label: str | None = Field(None, max_length=64)
    since: datetime | None = Field(None, description="Last changed at or after this time (ISO 8601).")
    until: datetime | None = Field(None, description="Last changed before this time (ISO 8601).")

    @field_validator("since", "until")
    @classmethod
    def in_utc(cls, value: datetime | None) -> datetime | None:
        # PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows (a 500 schemathesis found): compare in UTC;
        # a time without an offset is taken as UTC.
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class FeedbackIn(Schema):
    sample_id: int | None = Field(None, ge=1, le=MAX_ID)
    external_id: Text | None = Field(None, max_length=200)
    label: Text = Field(..., max_length=64)
    critique: Text = Field("", max_length=MAX_CRITIQUE_CHARS)
    quote: QuoteIn | None = Field(None, description="The passage of the output the critique is about.")


class SampleOut(Schema):
    id: int
    external_id: str
    inputs: Any
    outputs: str
    output_a: str
    output_b: str
    expectations: Any = None
    metadata: Any = None
    judge_value: str
    judge_rationale: str
    created_at: datetime


class SampleDetail(SampleOut):
    feedback: list[FeedbackOut]


class SamplePage(Schema):
    items: list[SampleOut]
    next_after: int | None


class SampleQuery(PageQuery):
    external_id: str | None = Field(None, max_length=200)
    judge_value: str | None = Field(None, max_length=64, description="The imported judge's verdict.")
    reviewed: bool | None = Field(None, description="Only samples with (true) or without (false) expert feedback.")


class ImportOut(Schema):
    rows: int
    created: int
    unchanged: int
    unchanged_differing: int
    feedback_created: int
    feedback_skipped: int
    message: str


class ImportProblem(Schema):
    line: int | None
    message: str


class ImportJobOut(Schema):
    id: int
    status: str = Field(..., description="queued, reading, writing, then done, rejected or failed.")
    filename: str
    total: int = Field(..., description="Rows in the file (known once it is checked).")
    written: int = Field(..., description="Rows written, or found already present, so far.")
    percent: int
    summary: ImportOut | None = Field(None, description="When done: what was imported.")
    errors: list[ImportProblem] = Field(default_factory=list, description="When rejected: the first problems.")
    total_errors: int
    url: str = Field(..., description="Where to read this import's progress.")


class JudgeIn(Schema):
    inputs: str | dict[str, Any] | list[Any] = Field(..., description="What the judged system was given.")
    outputs: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="The output to judge.")
    output_a: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="Pairwise projects: the first output.")
    output_b: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="Pairwise projects: the second output.")


class PrincipleUsed(Schema):
    id: int
    text: str


class ExampleUsed(Schema):
    feedback_id: int
    label: str
    similarity: float
    same_item: bool


class JudgeOut(Schema):
    verdict: str | None = Field(..., description="One of the project's labels; null when the judge abstained.")
    rationale: str
    principles: list[PrincipleUsed]
    examples: list[ExampleUsed]
    memory_version: int | None
    provider: str
    model: str
    usage: dict[str, int]
    tier: str = Field("", description="Which tier decided: same_item, learned, vote or llm.")
    probability: float | None = Field(None, description="The verdict's probability, when its tier has one.")
    probabilities: dict[str, float] = Field(
        default_factory=dict, description="The learned local judge's probability per label (empty: none used)."
    )


class RunIn(Schema):
    scope: Literal["reviewed", "unreviewed", "all", "items"] = Field(
        "reviewed",
        description="`items`: judge the `items` sent with this request (imported first, as by "
        "POST …/samples; ones the project already has are judged as stored).",
    )
    limit: int | None = Field(None, ge=1, le=MAX_ID, description="Judge at most this many samples of the scope.")
    items: list[Any] | None = Field(None, description="For scope `items`: rows as in a JSONL file.")


class RunOut(Schema):
    id: int
    status: str
    scope: str
    total: int
    done: int
    failed: int
    abstained: int
    percent: int
    memory_version: int | None
    figures: dict[str, Any] | None = Field(None, description="Agreement with the experts, once the run ended.")
    tiers: dict[str, Any] = Field(
        default_factory=dict,
        description="Verdicts per tier (same_item, learned, vote, llm) with their share, and the model calls and "
        "tokens the cascade saved (tokens at the run's mean per model call, once it ended).",
    )
    guarantee: dict[str, Any] | None = Field(
        None,
        description="Selective judging, once the run ended: the confidence threshold, its coverage, the "
        "guarantee in one `sentence` (or why there is none), the coverage curve and the calibration error.",
    )
    corrected_rates: dict[str, Any] | None = Field(
        None,
        description="Label rates over the unreviewed verdicts: raw, PPI++ corrected with the audit slice and "
        "experts-only, each with a 95% interval; `reason` says when they cannot be computed.",
    )
    checks: dict[str, Any] | None = Field(
        None, description="Order and stability checks: counts, `position_bias_rate`, `flip_rate`."
    )
    error: str
    created_at: datetime
    finished_at: datetime | None


class VerdictOut(Schema):
    sample_id: int
    external_id: str
    verdict: str | None
    rationale: str
    error: str
    imported: str
    experts: list[str]
    principle_ids: list[int]
    retrieved: list[int]
    usage: dict[str, int]
    confidence: float | None = Field(..., description="Calibrated probability that the experts agree.")
    escalated: bool = Field(
        ..., description="Below the run's guaranteed threshold, abstained or flipped: an expert should see it."
    )
    position_consistent: bool | None = Field(
        ..., description="Pairwise: whether the verdict held with the outputs swapped; null when not checked."
    )
    checks: dict[str, Any] = Field(
        ..., description='The checks made, e.g. {"order": "missing"} when the second ask failed.'
    )
    withheld: bool = Field(
        ...,
        description="A blind reviewer's token, on a sample they have not reviewed: the verdict is withheld (empty "
        "fields), as the aligned judge learned from the other experts' labels.",
    )


class VerdictPage(Schema):
    items: list[VerdictOut]
    next_after: int | None


class VerdictQuery(Schema):
    after: int | None = Field(
        None, ge=0, le=MAX_ID, description="Continue after this sample id (the previous page's next_after)."
    )
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    filter: Literal["all", "disagree_experts", "disagree_imported", "abstained", "errors", "escalated"] = "all"


class PrincipleOut(Schema):
    id: int
    text: str
    label: str
    origin: str
    pinned: bool
    retired: bool
    created_at: datetime


class VersionOut(Schema):
    number: int
    trigger: str
    status: str
    error: str
    summary: str
    principles: list[dict[str, Any]]
    provider: str
    model: str
    usage: dict[str, Any]
    created_at: datetime


class VersionPage(Schema):
    items: list[VersionOut]
    next_after: int | None


class MetricsOut(Schema):
    imported_judge: dict[str, Any] | None = Field(
        ..., description="The imported judge against the experts, every reviewed sample."
    )
    reviewed_samples: int
    latest_run: RunOut | None = Field(
        ..., description="The latest finished run of the aligned judge, with its figures."
    )
