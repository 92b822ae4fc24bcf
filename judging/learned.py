"""The learned local judge of a project: trained from the experts' final labels over the stored sample vectors,
stored in the database (judging.models.LearnedJudge) so every worker on every host uses the same one.

- Final labels: one per sample, the label its learnable feedback agrees on (a decision's label where owners
  decided; overruled feedback is left out; samples whose reviewers disagree undecided are left out), and only
  labels the schema still allows.
- It trains once there are MIN_LABELS final labels and MIN_PER_LABEL of each label (categories: of at least two
  labels; rarer ones are left out and named). Until then it says how many more are needed.
- A model is used only for the label schema and memory version it was trained at; otherwise it is set aside (the
  verdict says so) and a retraining is queued. A failed training keeps the previous model and records the error.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from django.utils import timezone

from judging import dispatch
from judging.learned_model import LearnedModel, fit_tuned, part_lengths
from judging.models import LearnedJudge
from memory import budget
from memory import vectors as sample_vectors
from memory.llm.base import LocalPrediction
from reviews.adjudication import learnable
from reviews.models import Feedback, Project, Sample

log = logging.getLogger(__name__)

MIN_LABELS = 20
MIN_PER_LABEL = 2
# The share of held-out verdicts the cascade's suggested threshold should get right (docs/EVALUATION.md).
TARGET_AGREEMENTS = (0.8, 0.9, 0.95)


@dataclass
class Readiness:
    ready: bool
    reason: str  # why it cannot train yet ("" when ready)
    more_needed: int  # final labels still needed, at the least
    counts: dict[str, int] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)  # labels too rare to learn (categories)


def schema_fingerprint(project: Project) -> str:
    """Identify the label schema a model answers in: its kind and its allowed labels, in order."""
    text = "\x00".join([project.label_kind, *project.label_choices])
    return hashlib.sha256(text.encode()).hexdigest()


def final_labels(project: Project) -> list[tuple[int, str]]:
    """(sample id, final label) of every sample with one, in sample id order."""
    rows = learnable(Feedback.objects.filter(project=project)).values_list("sample_id", "label")
    by_sample: dict[int, set[str]] = {}
    for sample_id, label in rows:
        by_sample.setdefault(sample_id, set()).add(label)
    allowed = set(project.label_choices)
    return [
        (sample_id, next(iter(labels)))
        for sample_id, labels in sorted(by_sample.items())
        if len(labels) == 1 and next(iter(labels)) in allowed
    ]


def readiness(kind: str, choices: list[str], labels: list[str]) -> Readiness:
    """Whether these final labels are enough to train, and if not, what is missing."""
    counts = Counter(labels)
    shown = {label: counts.get(label, 0) for label in choices}
    if kind == "categorical":
        learnable_labels = [label for label in choices if counts.get(label, 0) >= MIN_PER_LABEL]
        left_out = [label for label in choices if 0 < counts.get(label, 0) < MIN_PER_LABEL]
        required = 2 - len(learnable_labels)
        short = required * MIN_PER_LABEL if required > 0 else 0
    elif kind == "numeric":
        learnable_labels = [label for label in choices if counts.get(label, 0) >= MIN_PER_LABEL]
        left_out = []
        short = MIN_PER_LABEL * max(0, 2 - len(learnable_labels))
    else:  # pass/fail and pairwise: both labels
        learnable_labels = [label for label in choices if counts.get(label, 0) >= MIN_PER_LABEL]
        left_out = []
        short = sum(max(0, MIN_PER_LABEL - counts.get(label, 0)) for label in choices)
    total = sum(counts.values())
    more = max(MIN_LABELS - total, short)
    if more <= 0:
        return Readiness(True, "", 0, shown, left_out)
    if total < MIN_LABELS:
        reason = f"the learned judge needs at least {MIN_LABELS} final labels and has {total}"
    elif kind in ("pass_fail", "pairwise"):
        missing = ", ".join(f"“{label}”" for label in choices if counts.get(label, 0) < MIN_PER_LABEL)
        reason = f"it needs at least {MIN_PER_LABEL} final labels of each label; too few of {missing}"
    else:
        reason = f"it needs at least {MIN_PER_LABEL} final labels of each of two labels; only one label has them"
    return Readiness(False, reason, more, shown, left_out)


def project_readiness(project: Project) -> Readiness:
    return readiness(project.label_kind, project.label_choices, [label for _, label in final_labels(project)])


def train(project: Project) -> LearnedJudge:
    """Train the project's learned judge from its final labels and store it; return the stored row.

    Too few labels: no model (the previous one is removed, it learned from labels no longer enough or no longer
    there) and the reason is stored. A training that fails keeps the previous model and records the error.
    """
    row, _ = LearnedJudge.objects.get_or_create(project=project)
    version = budget.latest_version(project)
    labelled = final_labels(project)
    labels = [label for _, label in labelled]
    ready = readiness(project.label_kind, project.label_choices, labels)
    if not ready.ready:
        row.estimator, row.labels, row.trained_at = b"", 0, None
        row.not_trained = f"No learned judge yet: {ready.reason} ({ready.more_needed} more)."
        row.schema, row.memory_version, row.failure = schema_fingerprint(project), None, ""
        row.stats = {"counts": ready.counts}
        row.save()
        return row
    keep = [i for i, label in enumerate(labels) if label not in ready.left_out]
    started = time.monotonic()
    try:
        samples = Sample.objects.in_bulk([labelled[i][0] for i in keep])
        kept = [samples[labelled[i][0]] for i in keep]
        parts, lengths = sample_vectors.part_vectors(kept), sample_lengths(kept)
        kept_labels = [labels[i] for i in keep]
        model, out_of_fold = fit_tuned(project.label_kind, project.label_choices, parts, kept_labels, lengths=lengths)
        stats = {
            "counts": ready.counts,
            "left_out": ready.left_out,
            "seconds": round(time.monotonic() - started, 2),
            "prior_power": model.prior_power,
            "ordinal_cost": model.ordinal_cost,
            **(held_out(model, out_of_fold, kept_labels) if out_of_fold is not None else {}),
        }
    except Exception as error:  # keep the model in use; say what went wrong
        log.exception("training the learned judge of project %s failed", project.pk)
        row.failure, row.failed_at = f"{type(error).__name__}: {error}"[:2000], timezone.now()
        row.save(update_fields=["failure", "failed_at"])
        return row
    row.estimator = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    row.schema = schema_fingerprint(project)
    row.memory_version = version.number if version else None
    row.labels, row.stats, row.trained_at = len(keep), stats, timezone.now()
    row.not_trained, row.failure, row.failed_at = "", "", None
    row.save()
    return row


def held_out(model: LearnedModel, probabilities: np.ndarray, labels: list[str]) -> dict[str, object]:
    """Agreement on out-of-fold probabilities, and the cascade thresholds that would have reached each target
    agreement there."""
    confidence = probabilities.max(axis=1)
    right = np.array(model.decide(probabilities)) == np.array(labels)
    suggested: dict[str, dict[str, float]] = {}
    for target in TARGET_AGREEMENTS:
        for threshold in np.arange(0.5, 1.0001, 0.01):
            covered = confidence >= threshold
            if covered.any() and right[covered].mean() >= target:
                suggested[f"{target:.2f}"] = {"threshold": round(float(threshold), 2), "share": float(covered.mean())}
                break
    return {"held_out_exact": round(float(right.mean()), 4), "thresholds": suggested}


# --- using it ----------------------------------------------------------------------------------------------

_loaded: dict[int, tuple[object, LearnedModel]] = {}
_loaded_lock = threading.Lock()


@dataclass
class Usable:
    model: LearnedModel | None
    note: str  # why no model is used, "" when one is


UNREAD = -1  # usable()'s version when the caller has not read it


def usable(project: Project, queue_retraining: bool = True, version: int | None = UNREAD) -> Usable:
    """The project's model when it may be used now: trained, for this schema and memory version. `version`: the
    active version's number, when the caller knows it (budget.PrincipleSet.version), saving a query."""
    row = LearnedJudge.objects.filter(project=project).defer("estimator").first()
    if row is None:
        # Its training stores the row, with the reason when there are too few labels: reading every final
        # label here cost the judge API 0.9 s per call at 10,000 examples (issue 23).
        if queue_retraining:
            _queue_training(project)
        return Usable(None, "No learned judge yet: its first training is queued.")
    if not row.trained_at:
        return Usable(None, row.not_trained or "No learned judge yet.")
    reason = set_aside(project, row, version)
    if reason:
        if queue_retraining:
            _queue_training(project)
        return Usable(None, reason)
    return Usable(_load(row), "")


def set_aside(project: Project, row: LearnedJudge, version: int | None = UNREAD) -> str:
    """Why a trained model is not used now (another label schema, another memory version); "" when it is."""
    if version == UNREAD:
        latest = budget.latest_version(project)
        version = latest.number if latest else None
    if row.schema != schema_fingerprint(project):
        return "The learned judge was trained for another label schema; it is set aside until retrained."
    if row.memory_version != version:
        trained_at = f"memory version {row.memory_version}" if row.memory_version else "no memory version yet"
        now = f"version {version}" if version else "no version"
        return f"The learned judge was trained at {trained_at}, the memory is now at {now}; it is set aside until retrained."
    return ""


def _queue_training(project: Project) -> None:
    try:
        dispatch.request_training(project.pk)
    except Exception:  # the broker is down: the next saved label queues it
        log.exception("could not queue the training of project %s", project.pk)


def _load(row: LearnedJudge) -> LearnedModel:
    """Unpickle a stored model once per process and training."""
    with _loaded_lock:
        cached = _loaded.get(row.project_id)
        if cached is not None and cached[0] == row.trained_at:
            return cached[1]
    blob = LearnedJudge.objects.filter(pk=row.pk).values_list("estimator", flat=True).get()
    model: LearnedModel = pickle.loads(bytes(blob))  # written by our own workers (train), never by a user
    with _loaded_lock:
        _loaded[row.project_id] = (row.trained_at, model)
    return model


def sample_lengths(samples: list[Sample]) -> np.ndarray:
    """The samples' part lengths, as the learned judge's features take them."""
    return part_lengths([sample_vectors.sample_part_texts(sample) for sample in samples])


def predictions(
    project: Project, parts: np.ndarray, lengths: np.ndarray, found: Usable | None = None
) -> list[LocalPrediction]:
    """The learned judge's prediction for each item's part vectors and part lengths (none usable: each says
    why)."""
    found = found or usable(project)
    if found.model is None:
        return [LocalPrediction({}, None, 0.0, found.note) for _ in range(len(parts))]
    return predict(found.model, parts, lengths)


def predict(model: LearnedModel, parts: np.ndarray, lengths: np.ndarray) -> list[LocalPrediction]:
    probabilities = model.probabilities(parts, lengths)
    values = model.decide(probabilities)
    result = []
    for row, value in zip(probabilities, values):
        per_label = {label: round(float(p), 4) for label, p in zip(model.choices, row)}
        result.append(LocalPrediction(per_label, value, per_label[value], ""))
    return result
