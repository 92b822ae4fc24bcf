"""Signals the memory app listens to (reviews never imports memory)."""

from django.dispatch import Signal

# Sent after an import that wrote expert feedback in bulk (bulk writes send no post_save). Args: project_id.
feedback_imported = Signal()

# Sent after an import that created samples in bulk (bulk writes send no post_save). Args: project_id.
samples_imported = Signal()
