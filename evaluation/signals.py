"""How the evaluation app hears about the memory: every new memory version goes through the regression gate."""

from __future__ import annotations

from typing import Any

from evaluation import gate
from evaluation.models import GateCheck
from memory.events import versions_written
from memory.models import MemoryVersion
from reviews.models import Project


def check_new_versions(sender: Any, project: Project, versions: list[MemoryVersion], **kwargs: Any) -> GateCheck | None:
    """Re-judge the guard set with the newest version (under the caller's regeneration lock); the check says
    whether it is held."""
    return gate.check(project, versions)


def connect() -> None:
    versions_written.connect(check_new_versions, dispatch_uid="evaluation.check_new_versions")
