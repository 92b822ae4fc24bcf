"""How the judging app hears about reviews and the memory: saved, deleted or imported feedback and imported samples
change the review queue's teaching order and the learned judge's labels, and a new memory version sets the learned
judge aside: each is redone in the background (coalesced per project)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from judging import dispatch
from memory.events import versions_written as memory_versions_written
from memory.signals import deletes_are_quiet
from reviews.models import Feedback, Project
from reviews.signals import feedback_imported, samples_imported

log = logging.getLogger(__name__)


def feedback_changed(sender: Any, instance: Feedback, **kwargs: Any) -> None:
    if deletes_are_quiet():  # an unalign in bulk queues nothing per row; the next saved feedback re-ranks
        return
    project_id = instance.project_id
    transaction.on_commit(lambda: dispatch.request_queue_ranking(project_id), robust=True)
    transaction.on_commit(lambda: dispatch.request_training(project_id), robust=True)


def imported(sender: Any, project_id: int, **kwargs: Any) -> None:
    try:
        dispatch.request_queue_ranking(project_id)  # new samples and labels take their place in the teaching order
        dispatch.request_training(project_id)
    except Exception:  # the broker is down: the periodic repair catches up
        log.exception("could not queue the ranking of project %s after an import", project_id)


def versions_written(sender: type[Project], project: Project, **kwargs: Any) -> None:
    """A new memory version sets the learned judge aside (it learned the previous one): retrain it."""
    project_id = project.pk  # the sender is the Project class; the project comes as an argument
    transaction.on_commit(lambda: dispatch.request_training(project_id), robust=True)


def connect() -> None:
    post_save.connect(feedback_changed, sender=Feedback, dispatch_uid="judging.feedback_saved")
    post_delete.connect(feedback_changed, sender=Feedback, dispatch_uid="judging.feedback_deleted")
    feedback_imported.connect(imported, dispatch_uid="judging.feedback_imported")
    samples_imported.connect(imported, dispatch_uid="judging.samples_imported")
    memory_versions_written.connect(versions_written, dispatch_uid="judging.versions_written")
