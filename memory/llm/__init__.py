"""Pick the LLM provider for a project: its own setting, else the site default (see settings)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from memory.llm.base import Provider, ProviderError
from reviews import model_servers

PROVIDERS = ("offline", "anthropic", "openai_compatible")


def provider_name(project) -> str:
    return project.provider or settings.MEMALIGN_PROVIDER


def anthropic_model(project) -> str:
    """The Claude model a project on the Anthropic provider uses: its own, else the site's, else the default."""
    from memory.llm.anthropic import DEFAULT_MODEL

    return project.model_name or settings.MEMALIGN_MODEL or DEFAULT_MODEL


def get_provider(project, timeout: float | None = None, max_retries: int | None = None) -> Provider:
    """Return the provider a project uses; raise ProviderError when it cannot run (e.g. no API key).

    `timeout` (seconds per attempt) and `max_retries` shorten a network provider's patience, for calls made
    while a person waits on a web page.
    """
    name = provider_name(project)
    if name == "offline":
        from memory.llm.offline import OfflineProvider

        return OfflineProvider()
    if name == "anthropic":
        from memory.llm.anthropic import AnthropicProvider

        if not settings.ANTHROPIC_API_KEY:
            raise ProviderError("This project uses Anthropic Claude but ANTHROPIC_API_KEY is not set on the server.")
        patience: dict[str, Any] = {
            k: v for k, v in (("timeout", timeout), ("max_retries", max_retries)) if v is not None
        }
        return AnthropicProvider(
            model=anthropic_model(project),
            api_key=settings.ANTHROPIC_API_KEY,
            base_url=settings.ANTHROPIC_BASE_URL or None,
            **patience,
        )
    if name == "openai_compatible":
        from memory.llm.openai_compatible import OpenAICompatibleProvider

        base_url = model_servers.normalise(project.provider_base_url) or model_servers.site_default()
        model = project.model_name or settings.OPENAI_COMPATIBLE_MODEL
        if not base_url or not model:
            raise ProviderError(
                "This project uses an OpenAI-compatible server but has no base URL or model: set them "
                "in the project's settings, or OPENAI_COMPATIBLE_BASE_URL and OPENAI_COMPATIBLE_MODEL."
            )
        if not model_servers.is_allowed(base_url):  # saved before the site's list existed, or the list shrank
            raise ProviderError(
                "This project's model server is not one this site allows: an owner picks another in the "
                "project's settings (the site's list is OPENAI_COMPATIBLE_ALLOWED_BASE_URLS)."
            )
        patience = {k: v for k, v in (("timeout", timeout), ("max_retries", max_retries)) if v is not None}
        return OpenAICompatibleProvider(
            model=model,
            base_url=base_url,
            api_key=model_servers.api_key_for(base_url),
            structured=settings.OPENAI_COMPATIBLE_STRUCTURED,
            **patience,
        )
    raise ProviderError(f"Unknown provider {name!r}; choose one of {', '.join(PROVIDERS)}.")
