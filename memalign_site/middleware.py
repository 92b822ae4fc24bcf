"""Refuse a NUL character in a request's path or query string, before any view reads it.

PostgreSQL cannot hold NUL in text, so a NUL that reaches a query (an API slug, a search box) is a database
error, and a 500, instead of a plain "no". No URL this site serves needs one.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

MESSAGE = "The address contains a NUL character (%00), which no page or API operation accepts."


class NulGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()
        ):
            if request.path.startswith("/api/"):  # the API's one error body (api/errors.py)
                return JsonResponse({"detail": MESSAGE, "errors": [{"field": "url", "message": MESSAGE}]}, status=400)
            return HttpResponseBadRequest(MESSAGE, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
