"""The API object: version 1 under /api/v1/, token auth and the per-token rate limit on every endpoint."""

from __future__ import annotations

from ninja import NinjaAPI

from api import errors
from api.auth import TokenAuth, TokenRateThrottle
from api.views import router

api = NinjaAPI(
    title="MemAlign API",
    version="1",
    description="Import samples, give feedback, judge with a project's aligned judge and run batches. "
    "Authenticate with a personal access token from your account page: `Authorization: Bearer <token>`.",
    auth=TokenAuth(),
    throttle=[TokenRateThrottle()],
    urls_namespace="api-v1",
)
errors.install(api)
api.add_router("", router)
