"""Overlap: a sample stays in reviewers' "needs my review" until it has `Project.reviews_per_sample` reviews.

A reviewer served a sample from that queue claims one of its open slots for CLAIM_SECONDS (`claim`, under a lock
on the sample row: on PostgreSQL `SELECT … FOR UPDATE`, on SQLite the site's immediate transactions), so two
reviewers are never both given its last slot; others' live claims count as taken. Saving the review releases
the claim. A decided sample (reviews.adjudication) needs no more reviews. Lowering the setting while reviews
are in flight only closes slots: a reviewer who already has the page can still save.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.signals import post_save
from django.utils import timezone

from reviews.models import Decision, Feedback, Project, ReviewClaim, Sample

CLAIM_SECONDS = 600


def reviews_of(sample_ref) -> QuerySet[Feedback]:
    """The reviews that fill a sample's slots: its feedback, but for a decision's own row."""
    return Feedback.objects.filter(sample=sample_ref, decision__isnull=True)


def needing_review(qs: QuerySet[Sample], project: Project, user) -> QuerySet[Sample]:
    """Restrict samples to those with a slot open for `user`: no review of theirs, not decided, and fewer than
    reviews_per_sample reviews plus others' live claims."""
    live = ReviewClaim.objects.filter(sample=OuterRef("pk"), expires_at__gt=timezone.now())
    claims, held = live.exclude(user=user), Exists(live.filter(user=user))
    qs = qs.filter(
        ~Exists(Feedback.objects.filter(sample=OuterRef("pk"), author=user)),
        ~Exists(Decision.objects.filter(sample=OuterRef("pk"))),
    )
    # A slot I hold keeps the sample mine to finish, even if the setting was lowered meanwhile.
    if project.reviews_per_sample <= 1:  # the common case, answered by anti-joins on indexes
        return qs.filter((~Exists(reviews_of(OuterRef("pk"))) & ~Exists(claims)) | Q(held))
    return qs.alias(taken=_count(reviews_of(OuterRef("pk"))) + _count(claims)).filter(
        Q(taken__lt=project.reviews_per_sample) | Q(held)
    )


def _count(qs: QuerySet) -> Coalesce:
    counted = qs.order_by().values("sample").annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def claim(sample: Sample, user) -> bool:
    """Take one of the sample's open slots for `user` for CLAIM_SECONDS; return whether they have one.

    True as well when they already reviewed it (they edit their own review). Claims on one sample are taken
    one at a time under a lock on its row, so its last slot goes to one reviewer only.
    """
    with transaction.atomic():
        # of=self: lock the sample's row only. FOR UPDATE over the join would lock the project's row too, which
        # every concurrent feedback insert holds a key-share lock on (PostgreSQL found the deadlock).
        locked = Sample.objects.select_for_update(of=("self",)).filter(pk=sample.pk).select_related("project").first()
        if locked is None:
            return False
        now = timezone.now()
        # What decides, read in one query once the lock is held (on PostgreSQL a statement that waited for the
        # lock would still see the claims as they were when it began: hence not in the locking statement).
        state = _claim_state(locked, user, now)
        if state["reviewed"]:
            return True
        if state["decided"]:
            return False
        if state["expired"]:
            ReviewClaim.objects.filter(sample=locked, expires_at__lte=now).delete()  # abandoned: slots are free
        held = state["held"]  # mine already: renewed, even if the setting was lowered since
        if not held and state["taken"] >= locked.project.reviews_per_sample:
            return False
        until = now + timedelta(seconds=CLAIM_SECONDS)
        if held:
            ReviewClaim.objects.filter(sample=locked, user=user, expires_at__gt=now).update(expires_at=until)
        else:  # none of mine left: an expired one was deleted above, and the lock keeps others off this sample
            ReviewClaim.objects.create(sample=locked, user=user, expires_at=until)
        return True


def _claim_state(sample: Sample, user, now) -> dict[str, Any]:
    """Whether `user` reviewed the sample, whether it is decided, whether claims on it expired, whether `user`
    holds a live one, and how many slots reviews and live claims take."""
    claims = ReviewClaim.objects.filter(sample_id=sample.pk)
    live = claims.filter(expires_at__gt=now)
    # Subqueries on the sample's id (no OuterRef): cheaper to build than correlated ones, each on its index.
    return (
        Sample.objects.filter(pk=sample.pk)
        .values(
            reviewed=Exists(Feedback.objects.filter(sample_id=sample.pk, author=user)),
            decided=Exists(Decision.objects.filter(sample_id=sample.pk)),
            expired=Exists(claims.filter(expires_at__lte=now)),
            held=Exists(live.filter(user=user)),
            taken=Counted(reviews_of(sample.pk).values("id")) + Counted(live.values("id")),
        )
        .get()
    )


class Counted(Subquery):
    """How many rows a queryset of ids holds, as a subquery."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) counted)"
    output_field = IntegerField()


def release(sender, instance: Feedback, created: bool, **kwargs) -> None:
    """A saved review fills the slot its author claimed: the claim is no longer needed."""
    if created:
        ReviewClaim.objects.filter(sample_id=instance.sample_id, user_id=instance.author_id).delete()


def connect() -> None:
    post_save.connect(release, sender=Feedback, dispatch_uid="reviews.overlap.release")
