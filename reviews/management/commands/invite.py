"""manage.py invite PROJECT EMAIL --role ROLE: the members page's invitation, printing the one-time link."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from reviews import invitations
from reviews.models import Membership, Project, Role


class Command(BaseCommand):
    help = "Invite someone into a project by email (or username) and print the one-time link that lets them join."

    def add_arguments(self, parser):
        parser.add_argument("project", help="the project's slug")
        parser.add_argument("identifier", help="the invitee's email (or the username of an existing account)")
        parser.add_argument("--role", choices=[r.value for r in Role], default=Role.REVIEWER.value)
        parser.add_argument(
            "--base-url", default=settings.MEMALIGN_SITE_URL, help="the site's address (default: MEMALIGN_SITE_URL)"
        )

    def handle(self, project, identifier, role, base_url, **options):
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"No project with the slug {project!r}.") from None
        owner = Membership.objects.filter(project=target, role=Role.OWNER).select_related("user").first()
        try:
            invitation, token = invitations.invite_with_link(target, identifier, Role(role), owner and owner.user)
        except ValidationError as error:
            raise CommandError(error.messages[0]) from None
        url = base_url.rstrip("/") + invitations.link_path(token)
        sent = invitations.send_link(invitation, url)
        self.stdout.write(url)
        self.stderr.write(
            f"{invitation.identifier} is invited to {target.slug} as {invitation.role}; the link works once, until "
            f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC{' (also emailed)' if sent else ''}."
        )
