from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The site itself: registers the configuration checks (memalign_site/checks.py)."""

    name = "memalign_site"
    verbose_name = "MemAlign site"

    def ready(self) -> None:
        from memalign_site import checks  # noqa: F401  (registers them)
