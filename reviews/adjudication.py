"""Conflicts and adjudication: samples whose reviewers disagree, and the final label an owner or adjudicator decides.

A decision is a `Decision` row (who, which label, why) plus one `Feedback` row that carries it into the memory:
its author is the site's decisions account (never a person, never a rater in the team's figures) and its critique
is the decision's reason, so the memory learns the decision with the machinery that learns any feedback. The
feedback of another label on that sample is *overruled*: it stays in the database (the team's agreement figures
read it) but the memory leaves it out (`learnable`), exactly as if it had been unaligned. Undoing a decision
deletes both rows: the memory forgets the decision and learns the overruled feedback again.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from reviews import figures
from reviews.labels import normalize_label
from reviews.models import MAX_CRITIQUE_CHARS, Decision, Feedback, Membership, Project, Sample, agreement
from reviews.permissions import can_adjudicate, is_blind

# Parentheses are not allowed in usernames people choose (Django's username validator): no one can take it.
DECISIONS_USERNAME = "(team decision)"


class AlreadyDecided(Exception):
    """Someone decided this conflict first (or undid the decision being undone); nothing was written."""


def decisions_account():
    """Return the account that authors decisions' feedback: inactive, with no usable password."""
    user, created = get_user_model().objects.get_or_create(username=DECISIONS_USERNAME, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def team_feedback(qs: QuerySet[Feedback] | None = None) -> QuerySet[Feedback]:
    """Feedback given by reviewers, without decisions' own rows."""
    return (Feedback.objects.all() if qs is None else qs).filter(decision__isnull=True)


def overruled() -> Exists:
    """A condition on Feedback: a decision on its sample chose another label."""
    return Exists(Decision.objects.filter(sample=OuterRef("sample_id")).exclude(label=OuterRef("label")))


def standing(qs: QuerySet[Feedback]) -> QuerySet[Feedback]:
    """The feedback whose label stands as the experts' final word: everything but overruled feedback (feedback
    left out of the memory still counts here, as in every agreement figure)."""
    return qs.exclude(overruled())


def learnable(qs: QuerySet[Feedback]) -> QuerySet[Feedback]:
    """The feedback the memory learns from: everything but overruled feedback and feedback an owner left out."""
    return standing(qs).filter(excluded_from_memory=False)


def left_out() -> Q:
    """A condition on Feedback: not in the memory (overruled, or left out), the negation of `learnable`."""
    return Q(overruled()) | Q(excluded_from_memory=True)


def conflicted(project: Project) -> QuerySet[Sample]:
    """The project's samples whose reviewers gave different labels (decided or not), in id order."""
    labels = Count("feedback__label", distinct=True, filter=Q(feedback__decision__isnull=True))
    return Sample.objects.visible(project).alias(labels=labels).filter(labels__gt=1).order_by("id")


def open_conflicts(project: Project, membership: Membership) -> QuerySet[Sample]:
    """Undecided conflicts the member may see (a blind reviewer: only on samples they reviewed themselves)."""
    qs = conflicted(project).filter(~Exists(Decision.objects.filter(sample=OuterRef("pk"))))
    if is_blind(membership) and not can_adjudicate(membership):
        qs = qs.filter(Exists(Feedback.objects.filter(sample=OuterRef("pk"), author_id=membership.user_id)))
    return qs


def open_conflict_count(project: Project, membership: Membership) -> int:
    """How many open conflicts the member sees (the overview, the queue), kept in the figures cache."""
    blind = is_blind(membership) and not can_adjudicate(membership)
    # Only a blind reviewer's count is their own; everyone else sees the same one.
    who = f"user{membership.user_id}" if blind else "all"
    return figures.cached(project.pk, f"open-conflicts:{who}", lambda: open_conflicts(project, membership).count())


def decide(sample: Sample, label: str, reason: str, by) -> Decision:
    """Decide the final label of a conflicted sample, with the reason that will teach the judge.

    Raises ValidationError for a label outside the schema, an empty or too long reason, or a sample whose
    reviewers do not disagree; AlreadyDecided when someone decided it first (the one-decision-per-sample
    constraint makes two simultaneous decisions end with exactly one).
    """
    project = sample.project
    label = normalize_label(label, project.label_choices, project.label_kind)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why this label is right: the reason is what teaches the judge.")
    if "\x00" in reason or len(reason) > MAX_CRITIQUE_CHARS:
        raise ValidationError(f"The reason must be at most {MAX_CRITIQUE_CHARS:,} characters of text.")
    account = decisions_account()
    try:
        with transaction.atomic():
            Sample.objects.select_for_update().filter(pk=sample.pk).first()  # decisions on one sample queue here
            if Decision.objects.filter(sample=sample).exists():
                raise AlreadyDecided(_decided_message(sample))
            labels = set(team_feedback(Feedback.objects.filter(sample=sample)).values_list("label", flat=True))
            if len(labels) < 2:
                raise ValidationError("This sample's reviewers agree: there is nothing to decide.")
            feedback = Feedback.objects.create(
                project=project,
                sample=sample,
                author=account,
                label=label,
                critique=reason,
                agrees_with_judge=agreement(label, sample.judge_value),
            )
            return Decision.objects.create(
                project=project, sample=sample, label=label, reason=reason, feedback=feedback, decided_by=by
            )
    except IntegrityError:  # the other decision committed between our check and our insert
        raise AlreadyDecided(_decided_message(sample)) from None


def _decided_message(sample: Sample) -> str:
    decision = Decision.objects.select_related("decided_by").filter(sample=sample).first()
    if decision is None:
        return "Someone decided this conflict meanwhile; reload to see it."
    who = decision.decided_by.username if decision.decided_by else "someone"
    return f"{who} decided “{decision.label}” for this sample first; nothing was changed. Undo theirs to decide again."


def undo(project: Project, decision_id: int) -> Decision:
    """Undo a decision: its feedback leaves the memory and the overruled feedback comes back."""
    with transaction.atomic():
        decision = Decision.objects.select_for_update().filter(pk=decision_id, project=project).first()
        if decision is None:
            raise AlreadyDecided("This decision was already undone; nothing was changed.")
        if decision.feedback_id:
            Feedback.objects.filter(pk=decision.feedback_id).delete()  # cascades to the decision
        else:
            decision.delete()
        return decision
