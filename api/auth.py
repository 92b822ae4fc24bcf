"""Who is calling: a bearer token, and how often it may call (per token, shared by every web worker)."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from ninja.security import HttpBearer
from ninja.throttling import SimpleRateThrottle

from api import tokens


class TokenAuth(HttpBearer):
    """`Authorization: Bearer mla_…`; the request then acts as the token's user, within the token's scope."""

    def authenticate(self, request, token: str):
        found = tokens.authenticate(token.strip())
        if found is not None:
            request.user = found.user
        return found


class TokenRateThrottle(SimpleRateThrottle):
    """MEMALIGN_API_RATE requests per token (e.g. "120/min"), counted in Redis so every worker shares the count."""

    cache = caches["api"]
    scope = "token"

    def __init__(self) -> None:
        # The rate is read per request, not when the API module is imported: settings may change, and a bad
        # value is reported by `manage.py check` (memalign.E007) rather than as a traceback at start-up.
        self.rate, self.num_requests, self.duration = None, None, None

    def allow_request(self, request) -> bool:
        self.rate = settings.MEMALIGN_API_RATE
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)

    def get_cache_key(self, request) -> str | None:
        token = getattr(request, "auth", None)
        return f"api-rate:{token.digest}" if token is not None else None
