"""Evaluation: how agreement with the experts grows with the number of critiques the memory has learned.

Everything runs on scratch memory: a Chroma collection of its own (named after the Evaluation record, dropped at
the end, and by the periodic repair when a killed worker left it behind) and principles kept in a list. The
project's live memory (its collection, principles and versions) is only read, never written.

- held-out curve: a seeded split of the reviewed samples into train and test, whole groups on one side; train
  feedback is learned in growing shards, and after each shard the test items and the train items learned so far
  ("seen") are judged, for each variant of the memory (none, semantic only, episodic only, both, and the learned
  local judge trained on the feedback learned so far; with the offline provider "both" reads the learned judge
  too, as the offline provider does in production);
- prequential curve: feedback learned in the order it was given; before each shard is learned, its samples are
  judged ("next"), so every point is the judge as it was then, scored on reviews that came later.
- order and stability checks (LLM providers, the project's judging settings, as a run makes them): every point
  reports its position-bias and flip rates, and the document sums them over all the evaluation's verdicts.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypedDict

import numpy as np
from chromadb.api import ClientAPI
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from redis.lock import Lock

from agreement import metrics
from evaluation.models import Evaluation
from judging import checks, learned
from judging.learned_model import LearnedModel, fit_tuned
from memory import budget, versions
from memory import vectors as sample_vectors
from memory.embeddings import MiniLMEmbeddingFunction
from memory.episodic import get_client
from memory.limiter import in_slots
from memory.llm import get_provider
from memory.llm.base import Example, LocalPrediction, PrincipleText, Provider, Usage, WorkingMemory
from memory.llm.offline import OfflineProvider
from memory.locks import release
from memory.redis_client import get_redis
from reviews import figures
from reviews.adjudication import learnable
from reviews.models import Feedback, Project

VARIANTS = ("none", "semantic", "episodic", "both", "learned")
MIN_REVIEWED = 10
DEFAULT_TEST_FRACTION = 0.3
INTERVAL_RESAMPLES = 200
STALE_AFTER_SECONDS = 600  # a running evaluation silent this long lost its worker (renewed at every shard)
KAPPA_UNDEFINED = "kappa is undefined: the experts used a single label in these samples"


class EvaluationError(Exception):
    """The evaluation cannot run (too few reviewed samples, bad options); the message says why."""


def default_shards(total: int) -> list[int]:
    """0, 2, 5, 10, 20, 50, 100, 200, 500, … below `total`, then `total` itself."""
    shards, scale = [0], 1
    while True:
        for step in (2, 5, 10):
            if step * scale >= total:
                return shards + [total]
            shards.append(step * scale)
        scale *= 10


def shard_sizes(requested: list[int] | None, total: int) -> list[int]:
    """The requested sizes (or the default ones) within 0..total, sorted, ending with all of them."""
    if not requested:
        return default_shards(total)
    return sorted({min(max(0, s), total) for s in requested} | {total})


@dataclass
class Options:
    seed: int = 0
    test_fraction: float = DEFAULT_TEST_FRACTION
    shards: list[int] | None = None
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    prequential: bool = True
    limit: int | None = None

    def check(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise EvaluationError("The test fraction must be between 0 and 1 (for example 0.3).")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise EvaluationError(
                f"Unknown variant(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(VARIANTS)}."
            )
        if self.limit is not None and self.limit < 1:
            raise EvaluationError("The limit must be a positive number of reviewed samples.")

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "test_fraction": self.test_fraction,
            "shards": self.shards,
            "variants": list(self.variants),
            "prequential": self.prequential,
            "limit": self.limit,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Options:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# memory.episodic leaves get_client unannotated (that module is being reworked): the client it returns.
chroma_client: Callable[[], ClientAPI] = get_client


# --- what is evaluated --------------------------------------------------------------------------------------


def reviewed(project: Project, limit: int | None = None) -> list[Feedback]:
    """One feedback per reviewed sample (its latest the memory may learn: a decision, never overruled feedback),
    in the order the reviews were given."""
    latest: dict[int, Feedback] = {}
    learnable_feedback = learnable(Feedback.objects.filter(project=project))
    for feedback in learnable_feedback.select_related("sample").order_by("created_at", "id"):
        latest.pop(feedback.sample_id, None)
        latest[feedback.sample_id] = feedback
    items = sorted(latest.values(), key=lambda f: (f.created_at, f.pk))
    return items[:limit] if limit else items


def group_of(feedback: Feedback, group_key: str) -> str:
    value = (
        feedback.sample.metadata.get(group_key) if group_key and isinstance(feedback.sample.metadata, dict) else None
    )
    return f"group:{value}" if value not in (None, "") else f"sample:{feedback.sample_id}"


def split(
    items: list[Feedback], test_fraction: float, seed: int, group_key: str = ""
) -> tuple[list[Feedback], list[Feedback]]:
    """Split into (train, test) with a seeded shuffle of whole groups; train keeps the seeded order."""
    groups: dict[str, list[Feedback]] = {}
    for item in items:
        groups.setdefault(group_of(item, group_key), []).append(item)
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    wanted = round(len(items) * test_fraction)
    test: list[Feedback] = []
    train: list[Feedback] = []
    for name in names:
        (test if len(test) < wanted else train).extend(groups[name])
    return train, test


def estimated_calls(project: Project, options: Options) -> int:
    """Model calls an evaluation makes with an LLM provider: judging dominates (one call per item per point)."""
    items = figures.cached(
        project.pk,
        "reviewed-samples",
        lambda: Feedback.objects.filter(project=project).values("sample_id").distinct().count(),
    )
    items = min(items, options.limit) if options.limit else items
    test = round(items * options.test_fraction)
    train = items - test
    shards = shard_sizes(options.shards, train)
    judged = sum(test + size for size in shards) * len([v for v in options.variants if v != "learned"])
    plan = checks.project_plan(project, True, "", repeats=False)
    per_item = 1 + plan.both_orders + plan.stability_share  # the order check asks again; so does a drawn re-ask
    return round((judged + (items if options.prequential else 0)) * per_item)


# --- scratch memory -----------------------------------------------------------------------------------------

SCRATCH_PREFIX = "eval"


def scratch_name(evaluation_id: int, part: str) -> str:
    return f"{settings.MEMALIGN_NAMESPACE}-{SCRATCH_PREFIX}-{evaluation_id}-{part}"


class ScratchMemory:
    """An episodic collection and a principle list of the evaluation's own, grown shard by shard."""

    def __init__(self, project: Project, provider: Provider, name: str) -> None:
        self.project, self.provider, self.name = project, provider, name
        drop_collection(name)
        self.store = chroma_client().create_collection(
            name,
            # Text only: chroma's EmbeddingFunction type also takes images, which no collection here holds.
            embedding_function=MiniLMEmbeddingFunction(),  # type: ignore[arg-type]
            configuration={"hnsw": {"space": "cosine"}},
        )
        self.learned: dict[int, Feedback] = {}
        self.principles: list[PrincipleText] = []
        self.usage = Usage()

    def learn(self, feedback: list[Feedback], vectors: np.ndarray, semantic_too: bool) -> None:
        """Add feedback to the scratch collection and, when `semantic_too`, distil its critiques into principles."""
        if not feedback:
            return
        self.store.add(
            ids=[str(f.pk) for f in feedback],
            embeddings=[v.tolist() for v in vectors],
            metadatas=[{"sample_id": f.sample_id, "label": f.label} for f in feedback],
        )
        self.learned.update((f.pk, f) for f in feedback)
        critiques = [versions.example(f) for f in feedback if f.critique.strip()]
        if semantic_too and critiques:
            distillation = self.provider.distill(
                self.project.criterion, versions.schema(self.project), self.principles, critiques
            )
            self.usage.add(distillation.usage)
            start = len(self.principles) + 1
            self.principles += [
                PrincipleText(start + i, p.text, p.label) for i, p in enumerate(distillation.principles)
            ]

    def retrieve(self, items: list[Feedback], vectors: np.ndarray) -> list[list[Example]]:
        """The k most similar learned examples of each item, most similar first (its own included once learned)."""
        k = min(self.project.retrieval_k, len(self.learned))
        if k <= 0 or not items:
            return [[] for _ in items]
        found = self.store.query(query_embeddings=[v.tolist() for v in vectors], n_results=k, include=["distances"])
        result = []
        assert found["distances"] is not None  # asked for with include=["distances"]
        for item, ids, distances in zip(items, found["ids"], found["distances"]):
            own = sample_vectors.sample_fingerprint(item.sample)
            examples = []
            for entry_id, distance in zip(ids, distances):
                learned = self.learned[int(entry_id)]
                example = versions.example(learned, round(1.0 - float(distance), 4))
                example.same_item = sample_vectors.sample_fingerprint(learned.sample) == own
                examples.append(example)
            result.append(examples)
        return result

    def drop(self) -> None:
        drop_collection(self.name)


def drop_collection(name: str) -> None:
    try:
        chroma_client().delete_collection(name)
    except Exception as error:  # Chroma raises different errors for "no such collection" by client kind
        if "does not exist" not in str(error).lower() and "not found" not in str(error).lower():
            raise


def scratch_collections() -> list[str]:
    prefix = f"{settings.MEMALIGN_NAMESPACE}-{SCRATCH_PREFIX}-"
    names = [c if isinstance(c, str) else c.name for c in chroma_client().list_collections()]
    return [n for n in names if n.startswith(prefix)]


# --- judging one point --------------------------------------------------------------------------------------


@dataclass
class Judged:
    values: list[str | None]
    usage: Usage
    retrieved: list[list[int]]  # feedback ids each item's working memory held
    checks: list[dict[str, Any]] = field(default_factory=list)  # each verdict's order and stability checks


def learned_model(project: Project, items: list[Feedback], parts: np.ndarray) -> LearnedModel | None:
    """The learned judge trained on these items' labels (None below the learned judge's minimum)."""
    labels = [f.label for f in items]
    ready = learned.readiness(project.label_kind, project.label_choices, labels)
    if not ready.ready:
        return None
    keep = [i for i, label in enumerate(labels) if label not in ready.left_out and label in project.label_choices]
    lengths = learned.sample_lengths([items[i].sample for i in keep])
    labelled = [labels[i] for i in keep]
    return fit_tuned(project.label_kind, project.label_choices, parts[keep], labelled, lengths=lengths)[0]


def local_predictions(model: LearnedModel | None, items: list[Feedback], parts: np.ndarray) -> list[LocalPrediction]:
    if model is None:
        return [LocalPrediction({}, None, 0.0, "too few labels for the learned judge") for _ in range(len(parts))]
    return learned.predict(model, parts, learned.sample_lengths([f.sample for f in items]))


def judge_items(
    memory: ScratchMemory,
    items: list[Feedback],
    vectors: np.ndarray,
    variant: str,
    retrieved: list[list[Example]],
    local: list[LocalPrediction] | None = None,
    plan: checks.Plan | None = None,
) -> Judged:
    """Judge the items with one variant of the memory. `learned`: the same-item rule, then the learned judge
    (`local`); `both` with the offline provider also reads `local`, as the offline provider does in production.
    `plan`: the order and stability checks each verdict gets (their extra asks count in the usage)."""
    project = memory.project
    schema = versions.schema(project)
    use_principles = variant in ("semantic", "both")
    use_examples = variant in ("episodic", "both")
    if variant == "learned":
        return _judge_learned(project, items, retrieved, local or [])
    # One set of principles for the batch, as a run's chunk gets: within the budget, all of them.
    shared = (
        budget.within_budget(project, budget.PrincipleSet(memory.principles, set()), vectors)
        if use_principles and memory.principles
        else []
    )
    values: list[str | None] = []
    usage, ids, found = Usage(), [], []
    provider = memory.provider
    ask = in_slots(project.pk, project.provider_concurrency, provider.judge) if provider.remote else provider.judge
    for item, examples in zip(items, retrieved, strict=True):
        principles = shared
        examples = examples if use_examples else []
        prediction = local[len(values)] if local and variant == "both" and not memory.provider.remote else None
        working = WorkingMemory(
            project.criterion,
            schema,
            principles,
            examples,
            item.sample.inputs_text(),
            item.sample.output_text(),
            prediction,
        )
        verdict = ask(working)
        if plan is not None:
            sample = item.sample
            pair = (sample.output_a, sample.output_b) if project.is_pairwise else None
            found.append(checks.check(plan, working, verdict, ask, sample.pk, pair).checks)
        usage.add(verdict.usage)
        values.append(verdict.value)
        ids.append([e.feedback_id for e in examples])
    return Judged(values, usage, ids, found)


def _judge_learned(
    project: Project, items: list[Feedback], retrieved: list[list[Example]], local: list[LocalPrediction]
) -> Judged:
    schema = versions.schema(project)
    offline = OfflineProvider()
    values: list[str | None] = []
    ids = []
    for item, examples, prediction in zip(items, retrieved, local, strict=True):
        same = [e for e in examples if e.same_item]  # only the same-item rule: no vote behind the learned judge
        working = WorkingMemory(
            project.criterion, schema, [], same, item.sample.inputs_text(), item.sample.output_text(), prediction
        )
        values.append(offline.judge(working).value)
        ids.append([e.feedback_id for e in same])
    return Judged(values, Usage(), ids)


def point(
    project: Project,
    curve: str,
    variant: str,
    split_name: str,
    shard: int,
    items: list[Feedback],
    judged: Judged,
    seed: int,
) -> dict[str, Any]:
    """One point of a curve: the metrics module's figures, plus an interval of exact match for the chart."""
    references = [f.label for f in items]
    figures = metrics.agreement(
        references, judged.values, project.label_kind, project.label_choices, resamples=0, seed=seed
    )
    result: dict[str, Any] = {
        "curve": curve,
        "variant": variant,
        "split": split_name,
        "shard": shard,
        "n": len(items),
        "exact_match": None,
        "kappa": None,
        "weighted_kappa": None,
        "ccc": None,
        "mae": None,
        "abstained": 0,
        "interval": None,
        "tokens": judged.usage.input_tokens + judged.usage.output_tokens,
        "calls": judged.usage.calls,
        **_rates(checks.summed(judged.checks)),
    }
    if figures is None:
        return result
    truth = np.array(references)
    guess = np.array([v or metrics.ABSTAINED for v in judged.values])
    interval = metrics.bootstrap(truth, guess, lambda t, p: float(np.mean(t == p)), INTERVAL_RESAMPLES, seed)
    result.update(
        exact_match=round(figures.exact, 4),
        kappa=_round(figures.kappa),
        weighted_kappa=_round(figures.weighted_kappa),
        ccc=_round(figures.ccc),
        mae=_round(figures.mae),
        abstained=figures.abstained,
        interval=[round(interval[0], 4), round(interval[1], 4)] if interval else None,
    )
    return result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class Rates(TypedDict):
    position_bias_rate: float | None
    flip_rate: float | None


def _rates(summed: Mapping[str, Any]) -> Rates:
    return {"position_bias_rate": _round(summed["position_bias_rate"]), "flip_rate": _round(summed["flip_rate"])}


def checks_document(plan: checks.Plan, remote: bool, found: list[dict[str, Any]]) -> dict[str, Any]:
    """The order and stability checks of all the evaluation's verdicts; `not_checked` says which were not made."""
    summed = checks.summed(found)
    if not remote:
        missing = [checks.NOT_CHECKED]
    else:
        missing = [] if plan.both_orders else ["order: not checked (pairwise projects with both orders on)"]
        if not plan.stability_share:
            missing.append("stability: not checked (the stability share is 0%)")
    return {
        **_rates(summed),
        "order": summed["order"],
        "stability": summed["stability"],
        "not_checked": "; ".join(missing),
    }


# --- the evaluation -----------------------------------------------------------------------------------------

Progress = Callable[[int, int], None]


@dataclass
class Trace:
    """What each judged item's working memory held, by curve: tests check the prequential curve never leaks."""

    retrieved: list[tuple[str, int, list[int]]] = field(default_factory=list)  # (curve, judged feedback id, ids)


def evaluate(
    evaluation: Evaluation,
    provider: Provider | None = None,
    progress: Progress | None = None,
    trace: Trace | None = None,
) -> dict[str, Any]:
    """Run the evaluation the record describes on scratch memory and return its document (see the module doc).

    The scratch collections are dropped whatever happens.
    """
    project = evaluation.project
    options = Options.from_dict(evaluation.options)
    options.check()
    items = reviewed(project, options.limit)
    if len(items) < MIN_REVIEWED:
        raise EvaluationError(
            f"An evaluation needs at least {MIN_REVIEWED} reviewed samples; this project has {len(items)}. Review more first."
        )
    provider = provider or get_provider(project)
    train, test = split(items, options.test_fraction, options.seed, evaluation.group_key)
    if not train or not test:
        raise EvaluationError("The split left one side empty: change the test fraction, or review more samples.")
    vector_of = dict(zip([f.pk for f in items], sample_vectors.for_samples([f.sample for f in items])))
    wants_learned = "learned" in options.variants or (not provider.remote and "both" in options.variants)
    parts_of = (
        dict(zip([f.pk for f in items], sample_vectors.part_vectors([f.sample for f in items])))
        if wants_learned or (options.prequential and not provider.remote)
        else {}
    )
    heldout_shards = shard_sizes(options.shards, len(train))
    prequential_shards = shard_sizes(options.shards, len(items)) if options.prequential else []
    steps, done = len(heldout_shards) + max(0, len(prequential_shards) - 1), 0
    report = progress or (lambda done, total: None)
    report(0, steps)
    points: list[dict[str, Any]] = []
    semantic_needed = any(v in ("semantic", "both") for v in options.variants)
    plan = checks.project_plan(project, provider.remote, f"evaluation-{evaluation.pk}", repeats=False)
    found: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        memory = ScratchMemory(project, provider, scratch_name(evaluation.pk, "heldout"))
        learned_count = 0
        for size in heldout_shards:
            batch = train[learned_count:size]
            memory.learn(batch, _vectors(vector_of, batch), semantic_needed)
            learned_count = size
            model = learned_model(project, train[:size], _parts(parts_of, train[:size])) if parts_of else None
            for split_name, judged_items in (("test", test), ("seen", train[:size])):
                if not judged_items:
                    continue
                item_vectors = _vectors(vector_of, judged_items)
                retrieved = memory.retrieve(judged_items, item_vectors)
                local = local_predictions(model, judged_items, _parts(parts_of, judged_items)) if parts_of else None
                for variant in options.variants:
                    result = judge_items(memory, judged_items, item_vectors, variant, retrieved, local, plan)
                    found += result.checks
                    points.append(
                        point(project, "heldout", variant, split_name, size, judged_items, result, options.seed)
                    )
            done += 1
            report(done, steps)
        distill_usage = memory.usage
        memory.drop()
        if prequential_shards:
            ordered = items  # the order the reviews were given
            memory = ScratchMemory(project, provider, scratch_name(evaluation.pk, "prequential"))
            for size, following in zip(prequential_shards, prequential_shards[1:]):
                upcoming = ordered[size:following]
                upcoming_vectors = _vectors(vector_of, upcoming)
                retrieved = memory.retrieve(upcoming, upcoming_vectors)
                model = learned_model(project, ordered[:size], _parts(parts_of, ordered[:size])) if parts_of else None
                local = local_predictions(model, upcoming, _parts(parts_of, upcoming)) if parts_of else None
                result = judge_items(memory, upcoming, upcoming_vectors, "both", retrieved, local, plan)
                found += result.checks
                if trace is not None:
                    trace.retrieved += [("prequential", f.pk, ids) for f, ids in zip(upcoming, result.retrieved)]
                points.append(point(project, "prequential", "both", "next", size, upcoming, result, options.seed))
                memory.learn(upcoming, upcoming_vectors, True)
                done += 1
                report(done, steps)
            distill_usage.add(memory.usage)
            memory.drop()
    finally:
        for part in ("heldout", "prequential"):
            drop_collection(scratch_name(evaluation.pk, part))
    notes = []
    if len({f.label for f in items}) < 2:
        notes.append(KAPPA_UNDEFINED)
    return {
        "project": project.slug,
        "provider": provider.name,
        "model": provider.model,
        "label_kind": project.label_kind,
        "seed": options.seed,
        "train": len(train),
        "test": len(test),
        "test_fraction": options.test_fraction,
        "group_key": evaluation.group_key,
        "variants": list(options.variants),
        "baselines": baselines(train, test),
        "points": points,
        "distill_usage": distill_usage.as_dict(),
        "checks": checks_document(plan, provider.remote, found),
        "notes": notes,
        "seconds": round(time.monotonic() - started, 1),
    }


def _parts(parts_of: dict[int, np.ndarray], items: list[Feedback]) -> np.ndarray:
    return np.array([parts_of[f.pk] for f in items])


def _vectors(vector_of: dict[int, np.ndarray], items: list[Feedback]) -> np.ndarray:
    return np.array([vector_of[f.pk] for f in items]) if items else np.zeros((0, 384), dtype=np.float32)


class Baselines(TypedDict):
    majority: float
    majority_label: str
    imported_judge: float | None


def baselines(train: list[Feedback], test: list[Feedback]) -> Baselines:
    """Exact match on the test items of always saying the train's majority label, and of the imported judge."""
    majority = Counter(f.label for f in train).most_common(1)[0][0]
    judged = [f for f in test if f.sample.judge_value]
    imported = sum(f.sample.judge_value == f.label for f in judged) / len(judged) if judged else None
    return {
        "majority": round(sum(f.label == majority for f in test) / len(test), 4),
        "majority_label": majority,
        "imported_judge": None if imported is None else round(imported, 4),
    }


# --- the record ---------------------------------------------------------------------------------------------


def start(project: Project, user: User | None, options: Options) -> Evaluation:
    """Create a queued evaluation record after checking it can run; the caller dispatches it."""
    options.check()
    count = len(reviewed(project, options.limit))
    if count < MIN_REVIEWED:
        raise EvaluationError(
            f"An evaluation needs at least {MIN_REVIEWED} reviewed samples; this project has {count}. Review more first."
        )
    return Evaluation.objects.create(
        project=project, created_by=user, options=options.as_dict(), group_key=evaluation_group_key(project)
    )


def evaluation_group_key(project: Project) -> str:
    settings_row = getattr(project, "evaluation_settings", None)
    return settings_row.group_key if settings_row else ""


class EvaluationBusy(Exception):
    """Another evaluation of the project is running: this one waits its turn."""


def evaluation_lock(project_id: int) -> Lock:
    # Expires like a stale run (evaluation.curves.repair), and is renewed at every step of a live one.
    lock: Lock = get_redis().lock(
        f"{settings.MEMALIGN_NAMESPACE}:evaluation-lock:{project_id}", timeout=STALE_AFTER_SECONDS
    )
    return lock


def run(
    evaluation: Evaluation, provider: Provider | None = None, trace: Trace | None = None, wait: float | None = None
) -> Evaluation:
    """Run a saved evaluation, one per project at a time, recording progress and the result or failure on the record.

    Waits up to `wait` seconds (None: as long as it takes) for the project's running evaluation, else raises
    EvaluationBusy and leaves the record queued.
    """
    lock = evaluation_lock(evaluation.project_id)
    if not lock.acquire(blocking=True, blocking_timeout=wait):
        raise EvaluationBusy(f"Evaluation #{evaluation.pk} waits for the project's running evaluation.")
    try:
        Evaluation.objects.filter(pk=evaluation.pk).update(
            status=Evaluation.Status.RUNNING, started_at=timezone.now(), progress_at=timezone.now()
        )

        def progress(done: int, total: int) -> None:
            lock.reacquire()
            Evaluation.objects.filter(pk=evaluation.pk).update(done=done, total=total, progress_at=timezone.now())

        try:
            result = evaluate(evaluation, provider, progress, trace)
        except Exception as error:
            Evaluation.objects.filter(pk=evaluation.pk).update(
                status=Evaluation.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
            )
            raise
        Evaluation.objects.filter(pk=evaluation.pk).update(
            status=Evaluation.Status.DONE,
            result=result,
            provider=result["provider"],
            model=result["model"],
            finished_at=timezone.now(),
        )
    finally:
        release(lock)
    evaluation.refresh_from_db()
    return evaluation


def abandon(evaluation: Evaluation) -> None:
    """Mark an evaluation whose worker died as failed and drop its scratch memory."""
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=Evaluation.Status.FAILED, error="The worker stopped during the evaluation.", finished_at=timezone.now()
    )
    for part in ("heldout", "prequential"):
        drop_collection(scratch_name(evaluation.pk, part))


def repair() -> list[str]:
    """Mark evaluations whose worker died as failed and drop every scratch collection no live run uses."""
    cutoff = timezone.now() - timedelta(seconds=STALE_AFTER_SECONDS)
    for stale in Evaluation.objects.filter(status=Evaluation.Status.RUNNING, progress_at__lt=cutoff):
        abandon(stale)
    live = set(Evaluation.objects.filter(status=Evaluation.Status.RUNNING).values_list("pk", flat=True))
    dropped = []
    for name in scratch_collections():
        evaluation_id = name.split(f"-{SCRATCH_PREFIX}-")[-1].split("-")[0]
        if not evaluation_id.isdigit() or int(evaluation_id) not in live:
            drop_collection(name)
            dropped.append(name)
    return dropped


def figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def summary_text(result: Mapping[str, Any]) -> str:
    """The evaluation as a plain table, one line per point, with the baselines and any notes."""
    base = result["baselines"]
    lines = [
        f"{result['project']}: {result['provider']} ({result['model']}), {result['label_kind']}, seed {result['seed']}, "
        f"train {result['train']}, test {result['test']}",
        f"baselines on the test items: majority label {figure(base['majority'])}, imported judge {figure(base['imported_judge'])}",
        *result["notes"],
        *_checks_lines(result.get("checks")),
        f"{'curve':<12}{'variant':<10}{'split':<6}{'shard':>6}{'n':>6}{'exact':>8}{'kappa':>8}{'abst.':>6}",
    ]
    for p in result["points"]:
        lines.append(
            f"{p['curve']:<12}{p['variant']:<10}{p['split']:<6}{p['shard']:>6}{p['n']:>6}"
            f"{figure(p['exact_match']):>8}{figure(p['kappa']):>8}{p['abstained']:>6}"
        )
    return "\n".join(lines) + "\n"


def _checks_lines(found: Mapping[str, Any] | None) -> list[str]:
    if not found:
        return []  # an evaluation recorded before the checks were reported
    lines = [f"position-bias rate {figure(found['position_bias_rate'])}, flip rate {figure(found['flip_rate'])}"]
    return lines + ([found["not_checked"]] if found["not_checked"] else [])
