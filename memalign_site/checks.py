"""Configuration errors as Django system checks (`manage.py check` lists them with their ids).

memalign.E001  a variable that must be 0 or 1 is not       memalign.E006  OPENAI_COMPATIBLE_STRUCTURED unknown
memalign.E002  a variable that must be an integer is not   memalign.E007  MEMALIGN_API_RATE is not like "120/min"
memalign.E003  production mode without SECRET_KEY          memalign.E008  CHROMA_URL is not an http(s) URL
memalign.E004  production mode without ALLOWED_HOSTS       memalign.E009  time limits in the wrong order
memalign.E005  MEMALIGN_PROVIDER names no provider         memalign.E010  a size or count that must be positive
memalign.E011  a task may run past the visibility timeout
memalign.E012  a model server URL that is not a plain http(s) base URL
memalign.W001  the anthropic provider without ANTHROPIC_API_KEY

The web server (wsgi.py) and the Celery worker call `refuse_to_start`, so a misconfigured production site does
not come up half-working.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any
from urllib.parse import urlparse

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register, run_checks
from django.core.exceptions import ImproperlyConfigured
from ninja.throttling import SimpleRateThrottle

from memalign_site.celery import app
from memory.llm import PROVIDERS

TAG = "memalign"
STRUCTURED = ("tools", "json_schema")
POSITIVE = (
    "MEMALIGN_IMPORT_MAX_BYTES",
    "MEMALIGN_IMPORT_MAX_ROWS",
    "MEMALIGN_DISTILL_BATCH_SIZE",
    "MEMALIGN_DISTILL_BATCH_TOKENS",
    "MEMALIGN_LOGIN_FAILURES",
)
SETTING_OF = {"MEMALIGN_LOGIN_FAILURES": "AXES_FAILURE_LIMIT"}


@register(TAG)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Return an Error for each bad value settings.py noted and for each inconsistent setting."""
    found: list[CheckMessage] = [Error(message, id=check_id) for check_id, message in _noted()]
    found += _provider() + _model_servers() + _rate() + _chroma() + _time_limits() + _visibility() + _positive()
    return found


def refuse_to_start() -> None:
    """Raise ImproperlyConfigured listing the configuration errors, if there are any."""
    errors = [message for message in run_checks(tags=[TAG]) if message.is_serious()]
    if errors:
        raise ImproperlyConfigured("MemAlign is misconfigured:\n" + "\n".join(str(error) for error in errors))


def _noted() -> list[tuple[str, str]]:
    return list(getattr(settings, "MEMALIGN_SETTINGS_ERRORS", []))


def _provider() -> list[CheckMessage]:
    found: list[CheckMessage] = []
    if settings.MEMALIGN_PROVIDER not in PROVIDERS:
        found.append(
            Error(
                f"MEMALIGN_PROVIDER is {settings.MEMALIGN_PROVIDER!r}, not one of {', '.join(PROVIDERS)}.",
                id="memalign.E005",
            )
        )
    elif settings.MEMALIGN_PROVIDER == "anthropic" and not settings.ANTHROPIC_API_KEY:
        found.append(
            Warning(
                "MEMALIGN_PROVIDER is anthropic but ANTHROPIC_API_KEY is not set: every judge call will fail.",
                id="memalign.W001",
            )
        )
    if settings.OPENAI_COMPATIBLE_STRUCTURED not in STRUCTURED:
        found.append(
            Error(
                f"OPENAI_COMPATIBLE_STRUCTURED is {settings.OPENAI_COMPATIBLE_STRUCTURED!r}, "
                f"not one of {', '.join(STRUCTURED)}.",
                id="memalign.E006",
            )
        )
    return found


def _model_servers() -> list[CheckMessage]:
    """Each server a project may call must be a plain base URL: the list is matched exactly, and a user name,
    query or fragment in it would be sent to (or hide) the real host."""
    found: list[CheckMessage] = []
    named = [("OPENAI_COMPATIBLE_BASE_URL", settings.OPENAI_COMPATIBLE_BASE_URL)] * bool(
        settings.OPENAI_COMPATIBLE_BASE_URL
    )
    named += [("OPENAI_COMPATIBLE_ALLOWED_BASE_URLS", url) for url in settings.OPENAI_COMPATIBLE_ALLOWED_BASE_URLS]
    for name, value in named:
        url = urlparse(value)
        if url.scheme not in ("http", "https") or not url.hostname or url.username or url.query or url.fragment:
            found.append(
                Error(
                    f"{name} holds {value!r}: give a model server's base URL, e.g. http://gpu-box:8000/v1.",
                    id="memalign.E012",
                )
            )
    return found


def _rate() -> list[CheckMessage]:
    try:
        SimpleRateThrottle(settings.MEMALIGN_API_RATE)  # parses it as the API's throttle will
        return []
    except ValueError:
        pass
    return [
        Error(
            f"MEMALIGN_API_RATE is {settings.MEMALIGN_API_RATE!r}: give requests per period, e.g. 120/min or 5000/hour.",
            id="memalign.E007",
        )
    ]


def _chroma() -> list[CheckMessage]:
    if not settings.CHROMA_URL:
        return []
    url = urlparse(settings.CHROMA_URL)
    if url.scheme in ("http", "https") and url.hostname:
        return []
    return [
        Error(
            f"CHROMA_URL is {settings.CHROMA_URL!r}: give a Chroma server's address, e.g. http://chroma:8000.",
            id="memalign.E008",
        )
    ]


def _time_limits() -> list[CheckMessage]:
    soft, hard = settings.CELERY_TASK_SOFT_TIME_LIMIT, settings.CELERY_TASK_TIME_LIMIT
    found: list[CheckMessage] = []
    if soft >= hard:
        found.append(
            Error(
                f"CELERY_TASK_SOFT_TIME_LIMIT ({soft}) must be below CELERY_TASK_TIME_LIMIT ({hard}): the soft "
                "limit lets a task stop cleanly before the hard one kills it.",
                id="memalign.E009",
            )
        )
    if hard >= settings.MEMALIGN_LOCK_SECONDS:
        found.append(
            Error(
                f"MEMALIGN_LOCK_SECONDS ({settings.MEMALIGN_LOCK_SECONDS}) must outlast CELERY_TASK_TIME_LIMIT "
                f"({hard}), or a second regeneration could start while the first still runs.",
                id="memalign.E009",
            )
        )
    return found


def _visibility() -> list[CheckMessage]:
    """A late-acknowledged task still running when the broker's visibility timeout passes is delivered a second
    time, to a second worker: every task's hard time limit must end it first."""
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    for config in apps.get_app_configs():  # every app's tasks.py, with their own limits
        if importlib.util.find_spec(f"{config.name}.tasks"):
            importlib.import_module(f"{config.name}.tasks")
    too_long = sorted(
        (limit, name)
        for name, task in app.tasks.items()
        if (limit := task.time_limit or settings.CELERY_TASK_TIME_LIMIT) >= visibility
    )
    if not too_long:
        return []
    limit, name = too_long[-1]
    return [
        Error(
            f"CELERY_VISIBILITY_TIMEOUT ({visibility} s) must be longer than every task's time limit: {name} may "
            f"run {limit} s, and a task still running at the timeout is delivered again to another worker.",
            id="memalign.E011",
        )
    ]


def _positive() -> list[CheckMessage]:
    return [
        Error(f"{name} must be a positive number, not {value}.", id="memalign.E010")
        for name in POSITIVE
        if (value := getattr(settings, SETTING_OF.get(name, name))) < 1
    ]
