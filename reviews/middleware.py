"""Refuse a request body before anything reads it.

Django reads a POST body the first time something asks for it, and CsrfViewMiddleware asks before the view's
own login and role checks run: an anonymous upload would be parsed, and its files spooled to disk, only to be
turned away afterwards. This middleware runs before CSRF and decides from the declared Content-Length and the
user's role, never touching the body.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from reviews.models import Role
from reviews.permissions import get_project_for_user

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the CSRF field around an uploaded file


def accepts_upload(min_role: Role, max_bytes: Callable[[], int]) -> Callable:
    """Mark a project view (taking `slug`) as taking file uploads of at most `max_bytes()` from `min_role`."""

    def decorator(view):
        view.upload_role, view.upload_max_bytes = min_role, max_bytes
        return view

    return decorator


class BodyGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        length = _declared_length(request)
        if not length:
            return None
        role = getattr(view_func, "upload_role", None)
        if role is None:
            # Forms and htmx posts are small; Django would refuse the fields later, but only after reading them.
            if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE + MULTIPART_OVERHEAD:
                return _too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE, request)
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            get_project_for_user(request.user, view_kwargs.get("slug", ""), role)
        except Http404:
            return HttpResponse("No such project.", status=404, content_type="text/plain; charset=utf-8")
        except PermissionDenied as denied:
            return HttpResponse(str(denied), status=403, content_type="text/plain; charset=utf-8")
        limit = view_func.upload_max_bytes()
        if length > limit + MULTIPART_OVERHEAD:
            return _too_large(limit, request)
        return None


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django reads no body without a valid length either


def _too_large(limit: int, request: HttpRequest) -> HttpResponse:
    message = f"The request is larger than the limit of {limit / (1024 * 1024):g} MB; nothing was stored."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "errors": []}, status=413)  # the API's one error shape
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
