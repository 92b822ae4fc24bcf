"""One-time invitation links: issue, resend, look up, and join through them (with a new account or an existing one).

Only the SHA-256 of a link's token is stored, so the link is shown once (to the owner, to copy) and sent by email
when the site has a mail server; resending issues a new link and the old one stops working. A link works once,
until it expires, and only while its invitation and project exist.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from reviews.models import Invitation, Membership
from reviews.projects import accept_invitation


class InvalidLink(Exception):
    """The link cannot be used; `status` is the HTTP status that says why (404 unknown or used, 410 expired)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


USED_OR_REVOKED = (
    "This invitation link is no longer valid: it was already used, the owner revoked or resent it, or its "
    "project was deleted. Ask the project's owner for a new one."
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(invitation: Invitation) -> str:
    """Give the invitation a new one-time link valid for MEMALIGN_INVITATION_DAYS; return its token (the old
    link, if any, stops working)."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = token_hash(token)
    invitation.expires_at = timezone.now() + timedelta(days=settings.MEMALIGN_INVITATION_DAYS)
    invitation.save(update_fields=["token_hash", "expires_at"])
    return token


def link_path(token: str) -> str:
    return reverse("invitation-join", args=[token])


def send_link(invitation: Invitation, url: str) -> bool:
    """Email the link when the site has a mail server (EMAIL_HOST or EMAIL_BACKEND set); return whether sent.

    A failing mail server is not an error: the owner has the link to copy.
    """
    if not settings.MEMALIGN_SEND_INVITATIONS or "@" not in invitation.identifier:
        return False
    inviter = invitation.invited_by.username if invitation.invited_by else "An owner"
    body = (
        f"{inviter} invites you to review in “{invitation.project.name}” on MemAlign as "
        f"{invitation.get_role_display().lower()}.\n\nJoin with this link (it works once, until "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n{url}\n"
    )
    try:
        send_mail(f"Invitation to {invitation.project.name}", body, None, [invitation.identifier])
    except OSError:
        return False
    return True


def invitation_for_token(token: str, lock: bool = False) -> Invitation:
    """Return the invitation the link names, or raise InvalidLink. With `lock`, lock its row (inside atomic)."""
    qs = Invitation.objects.select_related("project", "invited_by")
    if lock:
        qs = qs.select_for_update(of=("self",))
    invitation = qs.filter(token_hash=token_hash(token)).first() if token else None
    if invitation is None:
        raise InvalidLink(USED_OR_REVOKED, 404)
    if invitation.expires_at is not None and invitation.expires_at <= timezone.now():
        raise InvalidLink(
            f"This invitation link expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. Ask the owner of the "
            "project to send a new one.",
            410,
        )
    return invitation


def check_account(invitation: Invitation, user) -> None:
    """Raise ValidationError unless `user` may accept this invitation: it names no account, or names theirs."""
    if invitation.user_id is not None and invitation.user_id != user.pk:
        raise ValidationError(
            "This invitation is for another account. Log out, then open the link again and log in with that "
            "account (or set a password if you have none)."
        )


@transaction.atomic
def join_with_account(token: str, user) -> Membership:
    """Accept the invitation as the logged-in `user`. Raises InvalidLink or ValidationError."""
    invitation = invitation_for_token(token, lock=True)
    check_account(invitation, user)
    invitation.user = user
    return accept_invitation(invitation)


@transaction.atomic
def join_with_new_account(token: str, username: str, password: str):
    """Create an account (the invitation's email, the chosen username and password) and accept; return the user.

    Refused when an account already uses the invitation's email (its owner logs in and accepts instead), or
    the link was used meanwhile (the row lock makes a double submit create one account, not two).
    """
    invitation = invitation_for_token(token, lock=True)
    if invitation.user_id is not None:
        raise ValidationError("An account already answers to this invitation: log in with it to accept.")
    email = invitation.identifier if "@" in invitation.identifier else ""
    users = get_user_model().objects
    if email and users.filter(email__iexact=email).exists():
        raise ValidationError(f"An account already uses {email}: log in with it to accept the invitation.")
    if users.filter(username__iexact=username).exists():
        raise ValidationError(f"The username {username} is taken: choose another.")
    user = users.create_user(username=username, email=email, password=password)
    invitation.user = user
    accept_invitation(invitation)
    return user


def suggested_username(invitation: Invitation) -> str:
    """A username to start from: the email's local part, or the identifier. Never checked against the accounts:
    the page would then read differently when one exists, and the owner holds the link (a taken name is said
    when the form is sent, as on any sign-up form)."""
    return invitation.identifier.split("@")[0][:140] or "reviewer"


def invite_with_link(project, identifier: str, role, invited_by) -> tuple[Invitation, str]:
    """Invite (reviews.projects.invite) and issue the invitation's one-time link; return both."""
    from reviews.projects import invite

    with transaction.atomic():
        invitation = invite(project, identifier, role, invited_by)
        return invitation, issue_link(invitation)
