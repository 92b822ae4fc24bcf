"""The contract every LLM provider implements.

A provider turns a working memory into a verdict, and critiques into principles. Providers see plain data
classes only (no Django models), so they can be tested and benchmarked without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ProviderError(Exception):
    """The provider could not produce a usable answer (outage, malformed reply, schema mismatch).

    `overloaded` marks a rate limit or overload (429, 529) that outlasted the SDK's own retries: a judge run
    waits `retry_after` seconds (the server's hint, when it gave one) and tries again instead of failing.
    """

    def __init__(self, message: str, *, overloaded: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.overloaded = overloaded
        self.retry_after = retry_after


@dataclass
class Usage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_creation_tokens += other.cache_creation_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_creation_tokens": self.cache_creation_tokens,
        }


@dataclass
class LabelSchema:
    """What a verdict may be: `choices` are the allowed label strings, in display order."""

    kind: str  # "pass_fail" | "categorical" | "numeric" | "pairwise"
    choices: list[str]


@dataclass
class Example:
    """A reviewed example: one reviewed sample, its final label and its reviews' critiques (memory.examples)."""

    feedback_id: int
    inputs: str
    output: str  # for pairwise: both outputs, labelled "A:" and "B:"
    label: str
    critique: str
    judge_value: str = ""
    similarity: float = 0.0  # cosine similarity to the query, when retrieved
    same_item: bool = False  # the very input and output being judged, reviewed before: its label decides
    # The labels the experts gave this sample when they disagree and no one has decided yet (reviews.adjudication):
    # the example is shown as disputed, with every label, never as one of them.
    disputed: list[str] = field(default_factory=list)
    other_critiques: list[str] = field(default_factory=list)  # the sample's other reviews, attached to this one


@dataclass
class PrincipleText:
    id: int
    text: str
    label: str = ""  # the label it leads to, "" for none


@dataclass
class LocalPrediction:
    """The learned local judge's answer for one item (judging/learned.py computes it; providers only read it)."""

    probabilities: dict[str, float]  # per label; empty when no learned judge could be used
    value: str | None  # the label it would give; None when there is no usable model
    probability: float  # the probability of `value`
    note: str  # why no model was used ("" when one was)


@dataclass
class WorkingMemory:
    """Everything the aligned judge sees for one new input."""

    criterion: str
    schema: LabelSchema
    principles: list[PrincipleText]
    examples: list[Example]  # the k most similar reviewed examples, most similar first
    inputs: str
    output: str
    local: LocalPrediction | None = None  # the learned judge's answer, when the caller computed it


# Which tier of the judge decided a verdict.
TIER_SAME_ITEM = "same_item"  # an identical reviewed item: its experts' label
TIER_LEARNED = "learned"  # the learned local judge
TIER_VOTE = "vote"  # the similarity vote of the retrieved examples
TIER_LLM = "llm"  # the model
TIERS = (TIER_SAME_ITEM, TIER_LEARNED, TIER_VOTE, TIER_LLM)


@dataclass
class Verdict:
    value: str | None  # None: the judge abstains (e.g. offline with an empty memory)
    rationale: str
    usage: Usage = field(default_factory=Usage)
    tier: str = ""  # one of TIERS ("" when the provider did not say)
    probability: float | None = None  # the decided label's probability, when the tier has one


@dataclass
class DistilledPrinciple:
    text: str
    source_ids: list[int]
    label: str = ""  # the label the principle leads to; "" when it applies whichever label is right


@dataclass
class Distillation:
    principles: list[DistilledPrinciple]
    usage: Usage = field(default_factory=Usage)


@dataclass
class Rederivation:
    """What remains of a principle once some of its sources are gone: its new text, or None to retire it."""

    text: str | None
    usage: Usage = field(default_factory=Usage)
    label: str | None = None  # the label it now leads to, when that changed


@dataclass
class Merge:
    principle_ids: list[int]  # two or more near-duplicates, merged into one
    text: str


@dataclass
class Consolidation:
    merges: list[Merge]
    contradictions: list[tuple[int, int]]  # pairs of principle ids that disagree: a human decides
    usage: Usage = field(default_factory=Usage)


class Provider(Protocol):
    name: str
    model: str
    remote: bool  # calls wait on a network service (run them concurrently), or compute in this process

    def judge(self, memory: WorkingMemory) -> Verdict:
        """Return a verdict on `memory.inputs`/`memory.output`, one of `memory.schema.choices` or None."""

    def distill(
        self, criterion: str, schema: LabelSchema, existing: list[PrincipleText], feedback: list[Example]
    ) -> Distillation:
        """Return new principles, complementary to `existing`, each citing the feedback ids it came from."""

    def rederive(self, criterion: str, principle: str, sources: list[Example]) -> Rederivation:
        """Return the principle as the remaining `sources` support it: kept, rewritten, or None (retired)."""

    def consolidate(self, criterion: str, principles: list[PrincipleText], budget: int | None = None) -> Consolidation:
        """Return merges of near-duplicate principles and pairs of contradicting ones; with a `budget`, merge
        and generalise until at most that many principles remain (the caller enforces it if the provider can't).
        """
