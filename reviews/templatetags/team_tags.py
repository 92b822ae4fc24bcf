"""Team review on the overview and the queue: the open conflicts a member may see, with a link."""

from django import template

from reviews.adjudication import open_conflict_count

register = template.Library()


@register.inclusion_tag("reviews/_conflicts_link.html")
def conflicts_link(project, membership):
    return {"project": project, "count": open_conflict_count(project, membership)}
