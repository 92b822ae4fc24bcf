"""What a finished run's verdicts are worth: calibrated confidence, the guarantee, escalation, corrected rates.

When a run ends (judging.runs._finish):
- each verdict's signals (judging.checks) become a raw score, calibrated on reviewed verdicts: this run's on
  reviewed samples, plus the latest earlier verdict on every other reviewed sample. Cross-fitted by sample
  (agreement.calibration), so a reviewed item never calibrates itself;
- the lowest threshold that keeps the project's target agreement at its risk is chosen on those cross-fitted
  confidences (agreement.selective); verdicts below it, abstentions and order flips are escalated, and the
  queue serves escalated unreviewed samples first ("Needs an expert", judging.teaching). Without a guarantee no
  verdict is escalated by confidence (there is no threshold to fall below), only abstentions and flips;
- label rates over the run's unreviewed verdicts are corrected by PPI++ with the experts' labels on the queue's
  random audit slice (agreement.ppi);
- the order and stability checks are summed up (position-bias rate, flip rate).
Everything is recomputed from stored rows, so settling a run twice writes the same values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db import transaction

from agreement import calibration, ppi, selective
from judging import checks, dispatch
from judging.models import Judgement, JudgeRun, JudgingSettings
from judging.run_agreement import expert_labels
from reviews.models import QueuePriority


def settle(run: JudgeRun) -> dict[str, Any]:
    """Write each verdict's confidence and escalation; return the run's guarantee, corrected rates and checks."""
    project = run.project
    setting = JudgingSettings.of(project)
    experts = expert_labels(project).labels
    rows = list(run.judgements.filter(error="").only("id", "sample_id", "value", "signals", "checks"))
    scores = {j.pk: calibration.raw_score(j.signals) or 0.0 for j in rows if j.value}
    calibration_set = _calibration_set(run, rows, experts, scores)
    ids = [sample_id for sample_id, _, _ in calibration_set]
    raw = [score for _, score, _ in calibration_set]
    agreed = [agrees for _, _, agrees in calibration_set]
    crossed = calibration.cross_fitted(ids, raw, agreed).tolist() if ids else []
    selection = selective.select_threshold(crossed, agreed, setting.target_agreement, setting.risk)
    calibrated = _calibrated(rows, experts, scores, ids, raw, agreed)
    for j in rows:
        j.confidence = calibrated.get(j.pk)
        below = selection.threshold is not None and (j.confidence or 0.0) < selection.threshold
        j.escalated = not j.value or below or (j.checks or {}).get("order") == "flipped"
    Judgement.objects.bulk_update(rows, ["confidence", "escalated"], batch_size=500)
    if any(j.escalated and j.sample_id not in experts for j in rows):
        transaction.on_commit(lambda: dispatch.request_queue_ranking(project.pk))
    guarantee = {**selection.as_dict(), "sentence": selection.sentence, "calibration_items": len(ids)}
    if len(ids) >= calibration.MIN_FIT:
        guarantee["ece_raw"] = calibration.expected_calibration_error(raw, agreed)
        guarantee["ece_calibrated"] = calibration.expected_calibration_error(crossed, agreed)
    return {
        "guarantee": guarantee,
        "corrected_rates": corrected_rates(run, rows, experts),
        "checks": summed_checks(rows),
    }


def _calibration_set(
    run: JudgeRun, rows: list[Judgement], experts: dict[int, str], scores: dict[int, float]
) -> list[tuple[int, float, bool]]:
    """(sample id, raw score, did the experts agree) for every reviewed sample with a verdict: this run's, else
    the latest earlier one of the same project."""
    pairs = {
        j.sample_id: (scores[j.pk], j.value == experts[j.sample_id]) for j in rows if j.value and j.sample_id in experts
    }
    earlier = (
        Judgement.objects.filter(project=run.project, sample_id__in=list(experts), error="")
        .exclude(value="")
        .exclude(run=run)
        .order_by("sample_id", "-id")
        .values_list("sample_id", "value", "signals")
    )
    for sample_id, value, signals in earlier.iterator():
        if sample_id not in pairs:  # the first row of a sample is its latest
            pairs[sample_id] = (calibration.raw_score(signals) or 0.0, value == experts[sample_id])
    return [(sample_id, score, agrees) for sample_id, (score, agrees) in sorted(pairs.items())]


def _calibrated(
    rows: list[Judgement],
    experts: dict[int, str],
    scores: dict[int, float],
    ids: list[int],
    raw: list[float],
    agreed: list[bool],
) -> dict[int, float | None]:
    """Each verdict's calibrated confidence: a reviewed sample's from a fit on the other folds, the rest from a
    fit on them all. None for abstentions, and for every verdict while too few reviewed verdicts exist."""
    if len(ids) < calibration.MIN_FIT:
        return {}
    folds = {fold: calibration.fit(*_outside(fold, ids, raw, agreed)) for fold in range(calibration.FOLDS)}
    everything = calibration.fit(raw, agreed)
    result: dict[int, float | None] = {}
    for j in rows:
        if j.pk not in scores:
            continue
        fitted = folds[calibration.fold_of(j.sample_id)] if j.sample_id in experts else everything
        # Unrounded: the threshold is one of these values, and a verdict at it must not fall below it.
        result[j.pk] = float(fitted(np.array([scores[j.pk]]))[0])
    return result


def _outside(fold: int, ids: list[int], raw: list[float], agreed: list[bool]) -> tuple[list[float], list[bool]]:
    kept = [i for i, sample_id in enumerate(ids) if calibration.fold_of(sample_id) != fold]
    return [raw[i] for i in kept], [agreed[i] for i in kept]


def corrected_rates(run: JudgeRun, rows: list[Judgement], experts: dict[int, str]) -> dict[str, Any]:
    """The run's label rates over its unreviewed verdicts: raw, PPI++ corrected with the audit slice, experts-only."""
    project = run.project
    unreviewed = [j.value for j in rows if j.value and j.sample_id not in experts]
    audit = set(QueuePriority.objects.filter(project=project, audit=True).values_list("sample_id", flat=True))
    labelled_ids = [s for s in experts if s in audit]
    judged = _latest_values(run, labelled_ids)
    pairs = [(experts[s], judged[s]) for s in sorted(labelled_ids) if s in judged]
    reason = ppi.why_not(len(pairs), len(unreviewed))
    result: dict[str, Any] = {"labelled": len(pairs), "unreviewed": len(unreviewed), "reason": reason}
    if reason:
        return result
    rates = ppi.corrected_rates(project.label_choices, [e for e, _ in pairs], [v for _, v in pairs], unreviewed)
    result["rates"] = [rate.as_dict() for rate in rates]
    if all(rate.power == 0 for rate in rates):
        result["reason"] = (
            "The judge's verdicts on the audit slice track the experts' no better than chance, so they add nothing: "
            "the corrected rates are the experts' own."
        )
    return result


def _latest_values(run: JudgeRun, sample_ids: list[int]) -> dict[int, str]:
    """The judge's verdict on each of these samples: this run's, else the project's latest (abstentions left out)."""
    values: dict[int, str] = {}
    rows = (
        Judgement.objects.filter(project=run.project, sample_id__in=sample_ids, error="")
        .exclude(value="")
        .order_by("sample_id", "-id")
        .values_list("sample_id", "value", "run_id")
    )
    for sample_id, value, run_id in rows.iterator():
        if run_id == run.pk or sample_id not in values:
            values[sample_id] = value
    return values


def summed_checks(rows: list[Judgement]) -> dict[str, Any]:
    """The run's order and stability checks: counts, the position-bias rate and the flip rate (None when unchecked)."""
    return checks.summed(j.checks or {} for j in rows)
