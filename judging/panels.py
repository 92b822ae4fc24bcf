"""What the judging app adds to the pages of the apps below it (reviews/panels.py): the aligned judge's latest
figures as the overview's headline, the imported judge's agreement on the overview, the latest verdict on the
review page, runs from the queue, the memory's "Runs" tab and its judging settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agreement import metrics
from judging import learned, run_agreement, run_listing, runs
from judging.forms import JudgingSettingsForm, TryJudgeForm
from judging.models import JudgeRun, JudgingSettings, LearnedJudge
from reviews import panels, team
from reviews.models import Project
from reviews.permissions import is_blind


def latest_figures(project: Project) -> tuple[JudgeRun | None, run_agreement.StoredFigures | None]:
    """The latest run that ended with figures, and those figures (recomputed if the experts' labels changed)."""
    run = (
        JudgeRun.objects.filter(project=project, status=JudgeRun.Status.DONE, figures__isnull=False)
        .select_related("memory_version")
        .defer("sample_ids")
        .order_by("-id")
        .first()
    )
    return (run, run_agreement.current_figures(run)) if run else (None, None)


def recall_by_label(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per expert label, how many of its samples the judge labelled the same (the confusion matrix's rows)."""
    out = []
    for i, label in enumerate(figures["labels"]):
        row = figures["confusion"][i]
        if label == metrics.ABSTAINED or not sum(row):
            continue
        out.append({"label": label, "hits": row[i], "n": sum(row), "recall": row[i] / sum(row)})
    return out


def overview_headline(context: Mapping[str, Any]) -> dict[str, Any]:
    """The aligned judge's latest figures (the product's), with the imported judge and the experts beside."""
    return headline_context(context["project"], context.get("team"))


def headline_context(project: Project, team_figures: team.TeamAgreement | None = None) -> dict[str, Any]:
    """The headline's figures (the overview, and the page "Run the judge" opens); `team_figures` if computed."""
    run, figures = latest_figures(project)
    aligned = figures.get("aligned") if figures else None
    if aligned:
        # Stored figures carry the reading of their day; read the number again with today's words.
        aligned = {
            **aligned,
            "reading": metrics.reading(aligned["headline"], aligned["n"]),
            "recall": recall_by_label(aligned),
        }
    imported = figures.get("imported") if figures else None
    if imported:
        imported = {**imported, "reading": metrics.reading(imported["headline"], imported["n"])}
    else:
        overall = run_agreement.imported_judge_agreement(project)[0]
        imported = overall.as_dict() if overall else None
    active = JudgeRun.objects.filter(project=project, status__in=runs.ACTIVE).defer("sample_ids").order_by("id").first()
    return {
        "headline": {
            "run": run,
            "aligned": aligned,
            "imported": imported,
            "imported_same_samples": bool(figures.get("imported") if figures else None),
            "active": active,
            "team": team_figures or team.overview_agreement(project),
            "scopes": run_scopes(),
        }
    }


def run_scopes() -> list[tuple[str, str]]:
    """The scopes an owner picks from the site (the queue's and the API's have their own ways in)."""
    hidden = (JudgeRun.Scope.QUEUE, JudgeRun.Scope.ITEMS)
    return [(value, str(label).split(" (")[0]) for value, label in JudgeRun.Scope.choices if value not in hidden]


def overview_agreement(context: Mapping[str, Any]) -> dict[str, Any]:
    """The imported judge's agreement with the experts, and the latest runs (the project overview)."""
    project = context["project"]
    figures, experts = run_agreement.imported_judge_agreement(project)
    recent = JudgeRun.objects.filter(project=project).defer("sample_ids").order_by("-id")[:5]
    # The teaching order serves hard samples first, so agreement over all reviews leans pessimistic; the audit
    # slice, drawn at random, is the unbiased one.
    audit, ranked = run_agreement.imported_judge_agreement_on_audit(project)
    agreement = {
        "f": figures.as_dict() if figures else None,
        "audit": audit.as_dict() if audit else None,
        "ranked": ranked,
        "experts": experts,
        "runs": recent,
    }
    return {"agreement": agreement}


def latest_verdict(context: Mapping[str, Any]) -> dict[str, Any]:
    """The latest aligned verdict on the review page's sample, with its explanation. Withheld during a
    judge-blind first pass (the review page's `verdict_hidden`), like the imported judge's; and from a blind
    reviewer until they reviewed the sample: the aligned judge learned from the other experts' labels, on this
    sample too (an identical reviewed item decides by its label)."""
    if context.get("verdict_hidden"):
        return {"judgement": None, "aligned_hidden": "Its verdict is shown once you choose a label, like the judge's."}
    if is_blind(context["membership"]) and not context.get("mine"):
        return {
            "judgement": None,
            "aligned_hidden": "Its verdict is shown once you have given your review: it learned from the other "
            "experts' labels.",
        }
    judgement = run_listing.latest_verdict(context["sample"])
    return run_listing.explanation(judgement, context["membership"]) if judgement else {"judgement": None}


def latest_runs(project: Project) -> dict[str, Any]:
    """The runs page's table: the latest 20 runs, and the scopes an owner may start one on."""
    runs_list = list(
        JudgeRun.objects.filter(project=project)
        .select_related("created_by", "memory_version")
        .defer("sample_ids")
        .order_by("-id")[:20]
    )
    return {"runs": runs_list, "scopes": run_scopes()}


def memory_settings(context: Mapping[str, Any]) -> dict[str, Any]:
    return {"judging_settings_form": JudgingSettingsForm(instance=JudgingSettings.of(context["project"]))}


def learned_judge(context: Mapping[str, Any]) -> dict[str, Any]:
    """The learned judge's state: trained (on what, how well, set aside or not), or how many labels it still needs."""
    project = context["project"]
    row = LearnedJudge.objects.filter(project=project).defer("estimator").first()
    ready = learned.project_readiness(project)
    reason = (
        f"No learned judge yet: {ready.reason} ({ready.more_needed} more needed)."
        if not ready.ready
        else "Enough final labels: training is queued."
    )
    note = learned.usable(project, queue_retraining=False).note if row and row.trained_at else ""
    thresholds = sorted(((row.stats or {}).get("thresholds") or {}).items()) if row else []
    return {"learned": {"row": row, "reason": reason, "note": note, "thresholds": thresholds}}


def offline_judge(context: Mapping[str, Any]) -> dict[str, Any]:
    """How the offline judge decides, and whether its learned tier is in use now (without loading the model)."""
    project = context["project"]
    row = LearnedJudge.objects.filter(project=project).defer("estimator").first()
    trained = bool(row and row.trained_at)
    if row is None or not row.trained_at:
        why = (row.not_trained if row else "").removeprefix(
            "No learned judge yet: "
        ) or "its first training has not run"
    else:
        why = learned.set_aside(project, row)
    why = why[:1].lower() + why[1:].rstrip(".")  # within a sentence
    return {
        "offline_learned": {
            "trained": trained,
            "in_use": trained and not why,
            "why": why,
            "labels": row.labels if row else 0,
        }
    }


def try_box(context: Mapping[str, Any]) -> dict[str, Any]:
    return {"try_form": TryJudgeForm(context["project"])}


def register() -> None:
    panels.register("overview-headline", "judging/_overview_headline.html", overview_headline)
    panels.register("overview", "judging/_overview_agreement.html", overview_agreement, order=10)
    panels.register("review-aside", "judging/_latest_verdict.html", latest_verdict)
    panels.register("queue-actions", "judging/_queue_run.html")
    panels.register("memory-links", "judging/_playground_link.html")
    panels.register("memory-offline-judge", "judging/_offline_judge.html", offline_judge)
    panels.register("memory-tabs", "judging/_memory_tab.html", order=10)
    panels.register("memory-settings", "judging/_memory_settings.html", memory_settings, order=10)
    panels.register("settings-actions", "judging/_backup_link.html")
