"""Which OpenAI-compatible model servers a project may call: the site's choice, never an owner's.

Anyone can create a project, so an owner's base URL would let anyone make the site send requests (with the site's
key) to any host, loopback and cloud metadata addresses included. The site lists the servers it allows
(`OPENAI_COMPATIBLE_ALLOWED_BASE_URLS`, plus its default `OPENAI_COMPATIBLE_BASE_URL`); a project picks one of them
or blank (the site default). Entries match exactly, after dropping a trailing slash, so another host, port or path
is refused, and so is a loopback, link-local or private address unless the site lists it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError


def normalise(url: str) -> str:
    return url.strip().rstrip("/")


def site_default() -> str:
    return normalise(settings.OPENAI_COMPATIBLE_BASE_URL)


def allowed_base_urls() -> list[str]:
    """Return the base URLs a project may pick, the site default first, without duplicates."""
    urls = [site_default(), *(normalise(url) for url in settings.OPENAI_COMPATIBLE_ALLOWED_BASE_URLS)]
    return list(dict.fromkeys(url for url in urls if url))


def is_allowed(url: str) -> bool:
    return not normalise(url) or normalise(url) in allowed_base_urls()


def validate_base_url(url: str) -> None:
    """Raise ValidationError unless `url` is blank (the site default) or one of the servers the site allows."""
    if is_allowed(url):
        return
    allowed = allowed_base_urls()
    raise ValidationError(
        "This site does not allow that model server"
        + (
            f"; pick one of: {', '.join(allowed)}."
            if allowed
            else "; it lists none (OPENAI_COMPATIBLE_ALLOWED_BASE_URLS)."
        )
    )


def api_key_for(url: str) -> str:
    """Return the site's key for `url`: only its own configured server receives it."""
    return settings.OPENAI_COMPATIBLE_API_KEY if normalise(url) == site_default() else ""
