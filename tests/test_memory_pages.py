"""The memory's pages: an overview and a page each for principles, versions, the episodic store, runs, evaluations
and the settings, joined by one sub-navigation that marks the page shown (aria-current)."""

from __future__ import annotations

import re

import pytest

from memory import principles, versions
from memory.models import MemoryVersion, Principle
from tests.conftest import add_feedback, add_sample

EVIL = '<script>alert("x")</script> Replies must acknowledge the loss.'

# The page and the tab it marks current.
PAGES = {
    "/memory/": "Overview",
    "/memory/principles/": "Principles",
    "/memory/versions/": "Versions",
    "/memory/episodic/": "Episodic",
    "/memory/runs/": "Runs",
    "/memory/evaluations/": "Evaluations",
    "/memory/audit/": "Audit log",
    "/memory/settings/": "Settings",
}
TAB = re.compile(r'<a class="filter" href="([^"]+)"( aria-current="page")?>([^<]+)</a>')


@pytest.fixture
def memory(personas):
    project = personas.project
    Principle.objects.create(project=project, text=EVIL, label="fail")
    add_feedback(add_sample(project, "grief-1"), personas.reviewer, "fail", "Cheerful sign-off to a widow.")
    with principles.changing(project):
        versions.new_version(project, MemoryVersion.Trigger.DISTILL, summary="distilled 1 critique")
    return project


def tabs(html: str) -> dict[str, tuple[str, bool]]:
    nav = html[html.index('id="memory-nav"') : html.index("</nav>", html.index('id="memory-nav"'))]
    return {name: (href, bool(current)) for href, current, name in TAB.findall(nav)}


@pytest.mark.parametrize("path,tab", PAGES.items())
def test_each_page_marks_its_own_tab_and_links_every_other(client, personas, memory, path, tab):
    client.force_login(personas.owner)
    response = client.get(f"/p/{memory.slug}{path}")
    assert response.status_code == 200
    shown = tabs(response.content.decode())
    assert list(shown) == list(PAGES.values())  # runs and evaluations come from the apps above, in their place
    assert [name for name, (_, current) in shown.items() if current] == [tab]
    assert {href for href, _ in shown.values()} == {f"/p/{memory.slug}{p}" for p in PAGES}


def test_the_settings_tab_is_an_owners(client, personas, memory):
    client.force_login(personas.viewer)
    shown = tabs(client.get(f"/p/{memory.slug}/memory/").content.decode())
    assert "Settings" not in shown and "Runs" in shown and "Evaluations" in shown
    assert client.get(f"/p/{memory.slug}/memory/settings/").status_code == 403


def test_the_settings_page_gathers_the_memorys_settings(client, personas, memory):
    client.force_login(personas.owner)
    page = client.get(f"/p/{memory.slug}/memory/settings/").content.decode()
    assert f'data-setting="max_principles">{memory.max_principles}<' in page
    assert f'action="/p/{memory.slug}/memory/judging-settings/"' in page  # registered by judging
    assert f'action="/p/{memory.slug}/memory/evaluation-settings/"' in page  # registered by evaluation
    assert f'href="/p/{memory.slug}/settings/"' in page


def test_the_overview_lists_the_first_principles_escaped_and_the_latest_versions(client, personas, memory):
    client.force_login(personas.viewer)
    page = client.get(f"/p/{memory.slug}/memory/").content.decode()
    principle = Principle.objects.get(project=memory)
    assert f'<a href="/p/{memory.slug}/memory/principles/{principle.pk}/">&lt;script&gt;' in page
    assert "<script>alert" not in page
    assert 'data-version="1"' in page and "distilled 1 critique" in page
    assert 'id="held-notice"' not in page  # nothing held
    for moved in ('id="judge"', 'id="try"', 'id="evaluation-form"', 'id="judging-settings"'):
        assert moved not in page  # on their own pages now


def test_the_runs_and_evaluations_pages_hold_what_the_dashboard_did(client, personas, memory):
    client.force_login(personas.owner)
    runs_page = client.get(f"/p/{memory.slug}/memory/runs/").content.decode()
    assert 'id="judge"' in runs_page and 'id="learned-judge"' in runs_page and 'id="try"' in runs_page
    evaluations_page = client.get(f"/p/{memory.slug}/memory/evaluations/").content.decode()
    assert 'id="evaluations"' in evaluations_page and 'id="evaluation-form"' in evaluations_page
    client.force_login(personas.viewer)
    assert 'id="evaluation-form"' not in client.get(f"/p/{memory.slug}/memory/evaluations/").content.decode()
