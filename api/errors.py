"""One error body for every failure: {"detail": …, "errors": [{"field" | "line": …, "message": …}]}.

An unexpected error (a bug, a database that went away) is the same body with status 500 and a `request_id`,
also sent as the X-Request-ID header and logged with the traceback, so a report can be matched to the log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from memory.llm.base import ProviderError
from reviews.import_reading import ImportRejected

logger = logging.getLogger(__name__)

# The parts of a pydantic location that say where a value came from, not which field it is.
SOURCES = {"body", "query", "path", "header", "form", "file"}
PARAMETERS = {"data", "items", "page", "query"}  # the views' names for a whole body or query schema


class ApiError(Exception):
    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors or []


def field_error(field: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, message, [{"field": field, "message": message}])


def _field(loc: Iterable[object]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in SOURCES:
        parts = parts[1:]
    if len(parts) > 1 and parts[0] in PARAMETERS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(api: NinjaAPI) -> None:
    """Register the handlers that turn every expected failure into the one error body."""

    def body(
        request: HttpRequest, status: int, detail: str, errors: list[dict[str, Any]] | None = None
    ) -> HttpResponse:
        return api.create_response(request, {"detail": detail, "errors": errors or []}, status=status)

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return body(request, exc.status, exc.detail, exc.errors)

    @api.exception_handler(ValidationError)
    def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return body(request, 400, f"{first['field']}: {first['message']}", errors)

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return body(
            request,
            401,
            "A valid API token is required: send `Authorization: Bearer <token>`. "
            "Tokens that are revoked or expired are refused.",
        )

    @api.exception_handler(Throttled)
    def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        return body(request, 429, "Too many requests with this token: wait for the time in Retry-After.")

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return body(request, exc.status_code, str(exc))

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return body(request, 404, str(exc) or "Not found.")

    @api.exception_handler(PermissionDenied)
    def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return body(request, 403, str(exc) or "Forbidden.")

    @api.exception_handler(RequestDataTooBig)
    def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return body(request, 413, "The request body is larger than the limit; send fewer items per request.")

    @api.exception_handler(ImportRejected)
    def rejected(request: HttpRequest, exc: ImportRejected) -> HttpResponse:
        errors = [{"line": line, "message": m} if line else {"field": "file", "message": m} for line, m in exc.errors]
        more = (
            f" (the first {len(exc.errors)} of {exc.total_errors} problems)"
            if exc.total_errors > len(exc.errors)
            else ""
        )
        return body(request, 400, f"The import was refused whole; nothing was written{more}.", errors)

    @api.exception_handler(ProviderError)
    def provider_failed(request: HttpRequest, exc: ProviderError) -> HttpResponse:
        return body(request, 502, f"The model provider failed: {exc}")

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        request_id = uuid.uuid4().hex
        logger.error("API request %s failed: %s %s", request_id, request.method, request.path, exc_info=exc)
        response = api.create_response(
            request,
            {
                "detail": f"Something went wrong on our side; nothing more was done. Quote request id {request_id} "
                "when you report it.",
                "errors": [],
                "request_id": request_id,
            },
            status=500,
        )
        response["X-Request-ID"] = request_id
        return response
