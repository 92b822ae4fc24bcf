"""How the memory hears about feedback: Django model signals and reviews' own import signal.

reviews never imports memory; this module is the only bridge, connected in MemoryConfig.ready().
Work is dispatched after commit, so a rolled-back save never reaches a worker. Dispatch is robust: with the
broker down the saved feedback stays saved (the database is the truth), the failure is logged, and the
periodic repair (memory.tasks.repair_all) embeds and distils what was missed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from memory import dispatch
from memory.models import DistilledFeedback, MemoryVersion
from reviews.models import Decision, Feedback, Project, Sample
from reviews.signals import feedback_imported, samples_imported

log = logging.getLogger(__name__)
_quiet_deletes: ContextVar[bool] = ContextVar("quiet_feedback_deletes", default=False)


@contextmanager
def quiet_feedback_deletes() -> Iterator[None]:
    """Dispatch nothing for feedback deleted in the block: the caller (memory.unalign) updates both memories."""
    reset = _quiet_deletes.set(True)
    try:
        yield
    finally:
        _quiet_deletes.reset(reset)


def deletes_are_quiet() -> bool:
    """Whether feedback deleted now is unaligned by memory.unalign, which handles what follows itself."""
    return _quiet_deletes.get()


def feedback_saved(sender: type[Feedback], instance: Feedback, **kwargs: Any) -> None:
    feedback_id, project_id = instance.pk, instance.project_id
    transaction.on_commit(lambda: dispatch.request_episodic_update(project_id, feedback_id), robust=True)
    transaction.on_commit(lambda: dispatch.request_regeneration(project_id), robust=True)


def feedback_deleted(sender: type[Feedback], instance: Feedback, **kwargs: Any) -> None:
    if _quiet_deletes.get():
        return
    feedback_id, project_id = instance.pk, instance.project_id
    transaction.on_commit(lambda: dispatch.remove_feedback(project_id, feedback_id), robust=True)
    transaction.on_commit(lambda: dispatch.request_regeneration(project_id), robust=True)


def feedback_bulk_imported(sender: object, project_id: int, **kwargs: Any) -> None:
    try:
        dispatch.sync_project(project_id)
        dispatch.request_regeneration(project_id, delay=0)  # the whole import is there: no burst to wait for
    except Exception:  # the broker is down: the periodic repair catches up
        log.exception("could not dispatch memory updates for imported feedback of project %s", project_id)


def sample_saved(sender: type[Sample], instance: Sample, created: bool, **kwargs: Any) -> None:
    if created:
        project_id = instance.project_id
        transaction.on_commit(lambda: dispatch.request_sample_embedding(project_id), robust=True)


def samples_bulk_imported(sender: object, project_id: int, **kwargs: Any) -> None:
    try:
        dispatch.request_sample_embedding(project_id)
    except Exception:  # the broker is down: the periodic repair catches up, and judging embeds what it needs
        log.exception("could not dispatch the embedding of imported samples of project %s", project_id)


def version_saved(sender: type[MemoryVersion], instance: MemoryVersion, created: bool, **kwargs: Any) -> None:
    """A version written: its principles' vectors are stored in the background (memory.principle_vectors)."""
    if created and instance.status != MemoryVersion.Status.FAILED:
        project_id = instance.project_id
        transaction.on_commit(lambda: dispatch.request_principle_embedding(project_id), robust=True)


def decision_changed(sender: type[Decision], instance: Decision, **kwargs: Any) -> None:
    """A decision made or undone: the sample's overruled feedback leaves the memory, or comes back.

    Made: the overruled feedback's distillation markers go (in the deciding transaction), so that an undo later
    distils it again; its principle links break (distil.broken_links) and are re-derived. Both ways, the
    sample's episodic entries are made to match and the principles regenerated once the transaction commits.
    """
    if kwargs.get("created", False):
        overruled = Feedback.objects.filter(sample_id=instance.sample_id).exclude(label=instance.label)
        DistilledFeedback.objects.filter(feedback__in=overruled).delete()
    project_id, sample_id = instance.project_id, instance.sample_id
    transaction.on_commit(lambda: dispatch.sync_sample(project_id, sample_id), robust=True)
    transaction.on_commit(lambda: dispatch.request_regeneration(project_id), robust=True)


def project_deleted(sender: type[Project], instance: Project, **kwargs: Any) -> None:
    project_id = instance.pk
    transaction.on_commit(
        lambda: dispatch.sync_project(project_id), robust=True
    )  # finds the project gone, drops its store


def connect() -> None:
    post_save.connect(feedback_saved, sender=Feedback, dispatch_uid="memory.feedback_saved")
    post_delete.connect(feedback_deleted, sender=Feedback, dispatch_uid="memory.feedback_deleted")
    post_delete.connect(project_deleted, sender=Project, dispatch_uid="memory.project_deleted")
    post_save.connect(decision_changed, sender=Decision, dispatch_uid="memory.decision_made")
    post_delete.connect(decision_changed, sender=Decision, dispatch_uid="memory.decision_undone")
    feedback_imported.connect(feedback_bulk_imported, dispatch_uid="memory.feedback_imported")
    post_save.connect(sample_saved, sender=Sample, dispatch_uid="memory.sample_saved")
    samples_imported.connect(samples_bulk_imported, dispatch_uid="memory.samples_imported")
    post_save.connect(version_saved, sender=MemoryVersion, dispatch_uid="memory.version_saved")
