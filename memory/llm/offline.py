"""The offline provider: no network, no LLM, deterministic. It works from local embeddings only.

- judge: a similarity-weighted vote of the retrieved examples' expert labels (k-nearest neighbours).
- distill: critique sentences are clustered by cosine similarity, per expert label; a cluster corroborated by
  two or more feedbacks (or one substantive critique with nothing similar already said) becomes a principle
  quoting its most central sentence, labelled with its label; one that repeats an existing principle of its
  label is credited to that principle instead.
- rederive: a principle is kept while its remaining sources still say it, rebuilt when their label changed,
  retired (None) when they no longer say it.
- consolidate: near-duplicate principles with the same label merge (never across labels).

Principles it writes read `When judging "<criterion>": <sentence> (experts chose <label>).` Texts in any other
form (an LLM's, or edited by a human) are still handled: their whole text is the body and they carry no label
(rederive keeps them while sources remain). Thresholds were picked on FeedbackQA's human rationales; see
docs/EMBEDDINGS.md.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memory.clustering import average_linkage
from memory.embeddings import embed, embed_cached, example_text
from memory.llm.base import (
    TIER_LEARNED,
    TIER_SAME_ITEM,
    TIER_VOTE,
    Consolidation,
    Distillation,
    DistilledPrinciple,
    Example,
    LabelSchema,
    Merge,
    PrincipleText,
    Rederivation,
    Verdict,
    WorkingMemory,
)

# Weight of a neighbour's vote = max(similarity, 0) ** SHARPEN. Sharpening lets a near-identical example
# outvote several loosely related ones; measured in bench/embedding_choice.py.
SHARPEN = 2.0
# Two critique sentences make the same point at average-linkage cosine >= 0.70. On FeedbackQA rationales
# this groups "This does not answer the question." variants; below it, clusters mix unrelated reasons
# that merely share a topic (MiniLM similarity tracks topic more than verdict).
CLUSTER_THRESHOLD = 0.70
# A remaining source still supports a principle when one of its sentences has cosine >= 0.60 to the
# principle's body. Measured on principles distilled from 400 FeedbackQA critiques: the best sentence of a
# critique that is not a source reaches 0.60 in 0.5% of 2,925 cases (99th percentile 0.57); paraphrases of
# the same reason ("does not address the question at all" vs "does not answer the question") sit at 0.6-0.7.
SUPPORT_THRESHOLD = 0.60
# A new principle is dropped as a near-duplicate of an existing one with the same label at cosine >= 0.85,
# and consolidate merges same-label principles at that level ("This does not answer the question." vs
# "This information does not answer the question.").
DUPLICATE_THRESHOLD = 0.85
MERGE_THRESHOLD = DUPLICATE_THRESHOLD
# A sentence of one uncorroborated critique becomes a principle only when it has >= 12 words (the median
# FeedbackQA critique sentence has 13). Shorter ones mostly restate the verdict ("This answer is great."),
# which the episodic memory already holds; they need a second feedback saying the same.
SUBSTANTIVE_WORDS = 12
MIN_SENTENCE_WORDS = 3  # fragments such as "Good." or "N/A" carry no reason
MAX_SENTENCE_CHARS = 240
CRITERION_WORDS = 10

_PRINCIPLE_RE = re.compile(
    r'^When judging "(?P<topic>.*?)": (?P<body>.*) \(experts chose (?P<label>[^()]+)\)\.?$', re.S
)
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")


class OfflineProvider:
    """Provider protocol implementation that needs neither network nor model other than local embeddings."""

    name = "offline"
    model = "offline-knn"
    remote = False  # CPU-bound in this process: batches run one after another

    def judge(self, memory: WorkingMemory) -> Verdict:
        """An identical reviewed item decides; else the learned judge's answer (`memory.local`) when it has one;
        else the similarity-weighted vote of `memory.examples`. None when there is nothing to go on."""
        examples = [e for e in memory.examples if e.label in memory.schema.choices]
        same = [e for e in examples if e.same_item and not e.disputed]
        local = memory.local
        if not same and local is not None and local.value is not None:
            ranked = ", ".join(
                f"{label} {p:.3f}" for label, p in sorted(local.probabilities.items(), key=lambda kv: -kv[1])
            )
            return Verdict(
                value=local.value,
                rationale=f"Offline learned judge (a calibrated model over the reviewed examples' vectors): {ranked}.",
                tier=TIER_LEARNED,
                probability=local.probability,
            )
        note = f" {local.note}" if local is not None and local.note else ""
        if not examples:
            reason = (
                "the memory holds no reviewed examples"
                if not memory.examples
                else ("no retrieved example carries a label allowed by the schema")
            )
            return Verdict(value=None, rationale=f"Offline judge abstains: {reason}.{note}")
        if same:
            # The item itself was reviewed: its experts decide, however many neighbours say otherwise (unless
            # they disagree among themselves and no one decided: then it is one disputed example among others).
            examples = same
        if all(e.disputed for e in examples):
            labels = sorted({label for e in examples for label in e.disputed})
            return Verdict(
                value=None,
                rationale="Offline judge abstains: the only similar examples are disputed — the experts gave "
                f"{' / '.join(labels)} and no one has decided yet.",
            )
        similarities = _example_similarities(memory, examples)
        labels, weights = split_disputed(examples, similarities, memory.schema.choices)
        value = knn_label(labels, weights, memory.schema.choices)
        if value is None:
            return Verdict(
                value=None, rationale="Offline judge abstains: no retrieved example is similar to this input."
            )
        scores = vote(labels, weights, memory.schema.choices)
        rationale = _judge_rationale(memory, examples, similarities, scores)
        if same:
            return Verdict(value, rationale, tier=TIER_SAME_ITEM, probability=scores[value] / sum(scores.values()))
        return Verdict(value, rationale + note, tier=TIER_VOTE, probability=scores[value] / sum(scores.values()))

    def distill(
        self, criterion: str, schema: LabelSchema, existing: list[PrincipleText], feedback: list[Example]
    ) -> Distillation:
        """New principles from `feedback`, none a near-duplicate (same label) of `existing` or of each other.

        Feedback whose label is not in `schema.choices` is ignored. Order: corroborated clusters (largest
        first, then by smallest feedback id), then lone substantive critiques by feedback id. Each principle
        cites the ids of the feedback it came from.
        """
        allowed = [e for e in feedback if e.label in schema.choices] if schema.choices else list(feedback)
        units = _sentence_units(sorted(allowed, key=lambda e: e.feedback_id))
        vectors = embed([u.text for u in units])
        corroborated = _corroborated_clusters(units, vectors)
        covered = {i for c in corroborated for i in c.feedback_ids}
        singles = _single_feedback_clusters(units, vectors, covered)
        candidates = sorted(corroborated, key=lambda c: (-len(c.feedback_ids), c.feedback_ids[0])) + singles
        return Distillation(principles=_novel_principles(criterion, candidates, existing))

    def rederive(self, criterion: str, principle: str, sources: list[Example]) -> Rederivation:
        """Keep `principle` (text unchanged) while the remaining `sources` still say it with its label;
        rebuild it from them if their label changed; None when they no longer support it, or are none.
        A principle in another format is kept while any source with a critique remains.

        A source supports the principle when one of its critique sentences has cosine >= SUPPORT_THRESHOLD
        to the principle's body. Support must be what distill would need to create it: two feedbacks, or
        one whose supporting sentence is substantive.
        """
        body, label = _parse(principle)
        units = _sentence_units(sorted(sources, key=lambda e: e.feedback_id))
        if not units:
            return Rederivation(text=None)
        if label is None:
            # Not written by this provider (an LLM's rule, or edited by a human). MiniLM puts an abstract
            # rule and a concrete critique that agrees with it at cosine 0.44-0.62, no higher than an
            # unrelated critique can reach, so support cannot be read here: keep it while sources remain
            # (a human can retire it; a wrong retirement would silently lose memory).
            return Rederivation(text=principle)
        vectors = embed([u.text for u in units])
        similarity = vectors @ embed([body])[0]
        keep = [i for i, s in enumerate(similarity) if s >= SUPPORT_THRESHOLD]
        if not keep:
            return Rederivation(text=None)
        cluster = _make_cluster(units, vectors, keep, similarity[keep], preferred_label=label)
        if not _worth_keeping(cluster):
            return Rederivation(text=None)
        if cluster.label == label:
            return Rederivation(text=principle)
        return Rederivation(text=_principle_text(criterion, cluster.central, cluster.label), label=cluster.label)

    def consolidate(self, criterion: str, principles: list[PrincipleText], budget: int | None = None) -> Consolidation:
        """Merge same-label principles at cosine >= MERGE_THRESHOLD (text of the most central one).

        It flags no contradictions (whether principles conflict is read from their sources' samples by
        memory.consolidate) and leaves a `budget` to the caller, which merges the closest same-label principles
        until it holds.
        """
        if len(principles) < 2:
            return Consolidation(merges=[], contradictions=[])
        parsed = [_parse(p.text) for p in principles]
        vectors = embed_cached([body for body, _ in parsed])
        labels = [p.label or label for p, (_, label) in zip(principles, parsed)]
        return Consolidation(merges=_merges(principles, vectors, labels), contradictions=[])


# --- judge ----------------------------------------------------------------------------------------------


def vote(
    labels: Sequence[str], similarities: Sequence[float], choices: Sequence[str], sharpen: float = SHARPEN
) -> dict[str, float]:
    """Sum of max(similarity, 0) ** sharpen per label in `choices`; labels with zero weight are left out."""
    scores: dict[str, float] = {}
    for label, similarity in zip(labels, similarities):
        weight = max(float(similarity), 0.0) ** sharpen
        if label in choices and weight > 0:
            scores[label] = scores.get(label, 0.0) + weight
    return scores


def knn_label(
    labels: Sequence[str], similarities: Sequence[float], choices: Sequence[str], sharpen: float = SHARPEN
) -> str | None:
    """The label `vote` ranks first (None if no weight at all). A tie goes to the label of the most similar
    example, then to schema order. The offline judge's decision rule, also used by the benchmark."""
    scores = vote(labels, similarities, choices, sharpen)
    if not scores:
        return None
    best_single = {label: max(s for each, s in zip(labels, similarities) if each == label) for label in scores}
    return max(scores, key=lambda label: (round(scores[label], 9), best_single[label], -list(choices).index(label)))


def split_disputed(
    examples: list[Example], similarities: list[float], choices: Sequence[str]
) -> tuple[list[str], list[float]]:
    """The (label, similarity) votes of the examples, a disputed sample's weight shared equally by every label
    its experts gave (once per sample, however many of its feedback entries were retrieved)."""
    labels: list[str] = []
    weights: list[float] = []
    counted: set[tuple[str, str]] = set()
    for example, similarity in zip(examples, similarities):
        if not example.disputed:
            labels.append(example.label)
            weights.append(similarity)
            continue
        key = (example.inputs, example.output)
        if key in counted:
            continue
        counted.add(key)
        shared = [label for label in example.disputed if label in choices]
        for label in shared:
            # weight = similarity ** SHARPEN: each label gets 1/len(shared) of the sample's weight.
            labels.append(label)
            weights.append(max(similarity, 0.0) * len(shared) ** (-1 / SHARPEN))
    return labels, weights


def _example_similarities(memory: WorkingMemory, examples: list[Example]) -> list[float]:
    """The retrieval similarities; if the caller left them all at 0.0 (not retrieved), compute them."""
    if any(e.similarity != 0.0 for e in examples):
        return [e.similarity for e in examples]
    texts = [example_text(memory.inputs, memory.output)] + [example_text(e.inputs, e.output) for e in examples]
    vectors = embed(texts)
    return [float(s) for s in vectors[1:] @ vectors[0]]


def _judge_rationale(
    memory: WorkingMemory, examples: list[Example], similarities: list[float], scores: dict[str, float]
) -> str:
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    tally = ", ".join(f"{label} {score:.2f}" for label, score in ranked)
    top = max(range(len(examples)), key=lambda i: similarities[i])
    nearest = examples[top]
    critique = _shorten(nearest.critique, 160) if nearest.critique.strip() else "no critique"
    disputed = sum(1 for e in examples if e.disputed)
    chose = " / ".join(nearest.disputed) + ", undecided" if nearest.disputed else nearest.label
    return (
        f"Offline kNN vote over {len(examples)} reviewed example(s), weight = similarity^{SHARPEN:g}: {tally}. "
        f"Closest example #{nearest.feedback_id} (similarity {similarities[top]:.2f}, experts chose "
        f'{chose}): "{critique}". '
        + (f"{disputed} disputed example(s) counted evenly for each label their experts gave. " if disputed else "")
        + f"{len(memory.principles)} principle(s) in memory (the offline judge does not apply them)."
    )


# --- distill / rederive -----------------------------------------------------------------------------------


@dataclass
class _Unit:
    """One sentence of one feedback's critique."""

    feedback_id: int
    label: str
    text: str


@dataclass
class _Cluster:
    label: str
    central: str  # the sentence that stands for the cluster
    vector: np.ndarray  # the embedding of `central`
    feedback_ids: list[int]  # distinct, ascending


def _sentences(critique: str) -> list[str]:
    """The critique's sentences with at least MIN_SENTENCE_WORDS words, trimmed to MAX_SENTENCE_CHARS,
    without end punctuation (the model puts "X" and "X." only ~0.94 apart: principle bodies have none)."""
    parts = (p.strip() for p in _SENTENCE_SPLIT_RE.split(critique.strip()))
    return [_bare(_shorten(p, MAX_SENTENCE_CHARS)) for p in parts if len(p.split()) >= MIN_SENTENCE_WORDS]


def _bare(sentence: str) -> str:
    return sentence.strip().rstrip(".!?;:, ")


def _sentence_units(feedback: Sequence[Example]) -> list[_Unit]:
    return [_Unit(e.feedback_id, e.label, s) for e in feedback for s in _sentences(e.critique)]


def _corroborated_clusters(units: list[_Unit], vectors: np.ndarray) -> list[_Cluster]:
    """Average-linkage clusters of sentences, per label (a rule ties one reason to one label), that hold
    sentences of at least two feedbacks. Central sentence: the medoid."""
    clusters: list[_Cluster] = []
    for label in sorted({u.label for u in units}):
        index = [i for i, u in enumerate(units) if u.label == label]
        for group in average_linkage(vectors[index], CLUSTER_THRESHOLD):
            members = [index[g] for g in group]
            if len({units[i].feedback_id for i in members}) >= 2:
                clusters.append(_make_cluster(units, vectors, members, _centrality(vectors[members])))
    return clusters


def _single_feedback_clusters(units: list[_Unit], vectors: np.ndarray, covered: set[int]) -> list[_Cluster]:
    """For each feedback not in `covered`, its sentence closest to the mean of its sentences (the first on
    ties, e.g. with two sentences), kept when that sentence is substantive."""
    by_feedback: dict[int, list[int]] = {}
    for i, unit in enumerate(units):
        if unit.feedback_id not in covered:
            by_feedback.setdefault(unit.feedback_id, []).append(i)
    clusters = [
        _make_cluster(units, vectors, members, _centrality(vectors[members])) for members in by_feedback.values()
    ]
    return [c for c in clusters if _worth_keeping(c)]


def _make_cluster(
    units: list[_Unit],
    vectors: np.ndarray,
    members: list[int],
    centrality: np.ndarray,
    preferred_label: str | None = None,
) -> _Cluster:
    """The cluster of `units[members]`; its central sentence has the highest `centrality` (first on ties)."""
    central = members[int(np.argmax(np.round(centrality, 6)))]  # rounding: float noise must not break ties
    return _Cluster(
        label=_dominant_label([units[i].label for i in members], preferred_label),
        central=units[central].text,
        vector=vectors[central],
        feedback_ids=sorted({units[i].feedback_id for i in members}),
    )


def _worth_keeping(cluster: _Cluster) -> bool:
    """Corroborated by two feedbacks, or one feedback whose central sentence is substantive."""
    if len(cluster.feedback_ids) >= 2:
        return True
    return len(cluster.central.split()) >= SUBSTANTIVE_WORDS


def _dominant_label(labels: list[str], preferred: str | None = None) -> str:
    """Most frequent label; a tie goes to `preferred` if tied, else to the first seen (feedback id order)."""
    counts = Counter(labels)
    top = max(counts.values())
    tied = [label for label in dict.fromkeys(labels) if counts[label] == top]
    return preferred if preferred in tied else tied[0]


def _novel_principles(
    criterion: str, candidates: list[_Cluster], existing: list[PrincipleText]
) -> list[DistilledPrinciple]:
    """Candidates in order, each either new or credited to a principle that already says it.

    A candidate that says what an existing principle with its label (or with none) says, at cosine >=
    DUPLICATE_THRESHOLD (a lone critique: >= SUPPORT_THRESHOLD, so a single-source principle is kept only when
    nothing similar exists), comes back as that principle's own text citing the candidate's sources, which the
    caller credits to it; one close to an earlier candidate joins that candidate's sources.
    """
    parsed = [_parse(p.text) for p in existing]
    taken_labels: list[str | None] = [p.label or label for p, (_, label) in zip(existing, parsed)]
    taken = embed_cached([body for body, _ in parsed])
    out: list[DistilledPrinciple] = []
    owners: list[DistilledPrinciple] = [
        DistilledPrinciple(p.text, [], p.label or (label or "")) for p, (_, label) in zip(existing, parsed)
    ]
    for cluster in candidates:
        threshold = DUPLICATE_THRESHOLD if len(cluster.feedback_ids) >= 2 else SUPPORT_THRESHOLD
        match = None
        if len(taken):
            similarity = taken @ cluster.vector
            for index in np.argsort(-similarity, kind="stable"):
                if similarity[index] < threshold:
                    break
                if taken_labels[index] in (cluster.label, None, ""):
                    match = int(index)
                    break
        if match is not None:
            owner = owners[match]
            if not owner.source_ids:
                out.append(owner)
            owner.source_ids = sorted(set(owner.source_ids) | set(cluster.feedback_ids))
            continue
        principle = DistilledPrinciple(
            _principle_text(criterion, cluster.central, cluster.label), cluster.feedback_ids, cluster.label
        )
        out.append(principle)
        owners.append(principle)
        taken = np.vstack([taken, cluster.vector[None, :]]) if len(taken) else cluster.vector[None, :]
        taken_labels.append(cluster.label)
    return out


# --- consolidate ----------------------------------------------------------------------------------------


def _merges(principles: list[PrincipleText], vectors: np.ndarray, labels: list[str | None]) -> list[Merge]:
    merges: list[Merge] = []
    for label in dict.fromkeys(labels):
        index = [i for i, other in enumerate(labels) if other == label]
        for group in average_linkage(vectors[index], MERGE_THRESHOLD):
            if len(group) < 2:
                continue
            members = [index[g] for g in group]
            central = members[int(np.argmax(_centrality(vectors[members])))]
            merges.append(Merge([principles[i].id for i in members], principles[central].text))
    merges.sort(key=lambda m: m.principle_ids[0])
    return merges


# --- shared helpers ---------------------------------------------------------------------------------------


def _centrality(vectors: np.ndarray) -> np.ndarray:
    """Each row's summed cosine to all rows (itself included): the medoid has the highest."""
    return (vectors @ vectors.T).sum(axis=1)


def _parse(text: str) -> tuple[str, str | None]:
    """(body, label) of a principle; a text not written by this provider is all body and has no label."""
    match = _PRINCIPLE_RE.match(text.strip())
    if match is None:
        return _bare(text), None
    return _bare(match["body"]), match["label"].strip()


def _principle_text(criterion: str, sentence: str, label: str) -> str:
    return f'When judging "{_criterion_topic(criterion)}": {_bare(sentence)} (experts chose {label}).'


def _criterion_topic(criterion: str) -> str:
    """The criterion's first sentence without parentheses, cut to CRITERION_WORDS words."""
    first = re.split(r"(?<=[.!?])\s", criterion.strip(), maxsplit=1)[0]
    plain = re.sub(r"\s*\([^)]*\)", "", first).strip().rstrip(".!?:;")
    plain = plain.replace('"', "'")  # the topic sits inside double quotes
    words = plain.split()
    return " ".join(words[:CRITERION_WORDS]) + ("…" if len(words) > CRITERION_WORDS else "")


def _shorten(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters (with an ellipsis)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
