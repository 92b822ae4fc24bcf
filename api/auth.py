"""Who is calling: a bearer token, and how often it may call (per token, shared by every web worker)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import BaseCache, caches
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.throttling import SimpleRateThrottle
from redis import RedisError

from api import tokens
from api.models import ApiToken


class TokenRequest(HttpRequest):
    """A request TokenAuth let through (every API endpoint's): ninja sets `auth` to the token, and TokenAuth
    `user` to the token's user."""

    auth: ApiToken
    user: User


class TokenAuth(HttpBearer):
    """`Authorization: Bearer mla_…`; the request then acts as the token's user, within the token's scope."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = tokens.authenticate(token.strip())
        if found is not None:
            request.user = found.user
        return found


logger = logging.getLogger(__name__)
LOG_EVERY_SECONDS = 60  # one line a minute per process while Redis is down, not one per request


class TokenRateThrottle(SimpleRateThrottle):
    """MEMALIGN_API_RATE requests per token (e.g. "120/min"), counted in Redis so every worker shares the count.

    With Redis down the API keeps serving and nothing is counted (fail open, with a log line): a missed limit
    for the length of an outage costs less than an API that answers nothing but errors.
    """

    scope = "token"
    _last_logged = 0.0

    def __init__(self) -> None:
        # The rate is read per request, not when the API module is imported: settings may change, and a bad
        # value is reported by `manage.py check` (memalign.E007) rather than as a traceback at start-up.
        self.rate, self.num_requests, self.duration = None, None, None

    @property
    def cache(self) -> BaseCache:  # type: ignore[override]  # looked up per request: settings may change
        return caches["api"]

    def allow_request(self, request: HttpRequest) -> bool:
        self.rate = settings.MEMALIGN_API_RATE
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request)
        except RedisError as error:
            if time.monotonic() - TokenRateThrottle._last_logged > LOG_EVERY_SECONDS:
                TokenRateThrottle._last_logged = time.monotonic()
                logger.warning("Redis is unreachable (%s): the API rate limit is not enforced until it is back", error)
            return True

    def get_cache_key(self, request: HttpRequest) -> str | None:
        token = getattr(request, "auth", None)
        return f"api-rate:{token.digest}" if token is not None else None
