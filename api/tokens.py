"""Creating, checking and revoking API tokens. A token is shown once; only its hash is kept."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import timezone

from api.models import ApiToken
from reviews.models import Membership, Project

PREFIX = "mla_"
LAST_USED_PRECISION = timedelta(minutes=1)  # write last_used_at at most once a minute per token


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(
    user: User, name: str, project: Project | None = None, read_only: bool = False, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token for `user`; return it and the secret, which is never stored and cannot be shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the token a name, to tell it apart later.")
    if project is not None and not Membership.objects.filter(project=project, user=user).exists():
        raise ValidationError("A token can be restricted only to a project its user is a member of.")
    if expires_days is not None and expires_days < 1:
        raise ValidationError("The expiry is a positive number of days.")
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=raw[: len(PREFIX) + 6],
        digest=digest(raw),
        project=project,
        read_only=read_only,
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    return token, raw


def authenticate(raw: str) -> ApiToken | None:
    """Return the active token with this secret (and note its use), or None: unknown, revoked or expired."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user", "project").filter(digest=digest(raw)).first()
    if token is None or not token.active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def revoke(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
