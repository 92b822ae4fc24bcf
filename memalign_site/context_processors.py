"""What every page's frame needs from the request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def project_membership(request: HttpRequest) -> dict[str, Any]:
    """The member's membership of the page's project (set by reviews.permissions.project_view), so the navigation
    shows their role and owner links on every project page, whether or not the view passes it."""
    return {"membership": getattr(request, "membership", None)}
