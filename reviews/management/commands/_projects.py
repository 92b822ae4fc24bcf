from django.core.management.base import CommandError

from reviews.models import Project


def projects_named(slug: str | None) -> list[Project]:
    """Return the project with this slug, or every project when no slug is given."""
    if slug is None:
        return list(Project.objects.order_by("id"))
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"No project with the slug {slug!r}.")
    return [project]
