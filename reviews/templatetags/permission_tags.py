"""The permission vocabulary for templates: `{% if membership|can:"owner" %}` asks reviews/permissions.py."""

from __future__ import annotations

from django import template

from reviews import permissions
from reviews.models import Membership, Role

register = template.Library()


@register.filter
def can(membership: Membership | None, role: str) -> bool:
    """Return whether the membership carries at least `role`; an unknown role name is a template error."""
    try:
        needed = Role(role)
    except ValueError:
        raise template.TemplateSyntaxError(f"'can' takes one of {', '.join(Role.values)}, not {role!r}") from None
    return permissions.can(membership, needed)
