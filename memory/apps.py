from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"
    verbose_name = "Memory"

    def ready(self) -> None:
        from memory import audit, signals
        from reviews import panels

        signals.connect()
        audit.register()
        panels.register("project-list-actions", "memory/_import_judge_button.html")
