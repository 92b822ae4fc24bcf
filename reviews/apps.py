from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


class ReviewsConfig(AppConfig):
    name = "reviews"
    verbose_name = "Reviews"

    def ready(self) -> None:
        from reviews import overlap

        overlap.connect()
        post_migrate.connect(restore_state_triggers, sender=self, dispatch_uid="reviews.state_triggers")


def restore_state_triggers(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """After every migrate: a migration that rebuilt a table on SQLite dropped its state triggers."""
    from reviews import state_triggers

    connection = connections[using]
    if "reviews_projectstate" in connection.introspection.table_names():
        state_triggers.create(connection)
