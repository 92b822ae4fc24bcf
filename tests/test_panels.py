"""The panels the upper apps add to reviews' and memory's pages (reviews/panels.py): each slot a page renders has
its panels, and each panel's template exists."""

from __future__ import annotations

import re
from pathlib import Path

from django.template.loader import get_template

from reviews import panels

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
SLOT = re.compile(r"""\{%\s*panels\s+["']([\w-]+)["']\s*%\}""")


def test_every_slot_a_page_renders_has_panels_and_their_templates_exist():
    used = {slot for path in TEMPLATES.rglob("*.html") for slot in SLOT.findall(path.read_text())}
    assert used == {
        "overview-headline",
        "overview",
        "review-aside",
        "queue-actions",
        "project-list-actions",
        "memory-tabs",
        "memory-overview",
        "memory-settings",
        "memory-links",
        "memory-offline-judge",
        "settings-actions",
    }
    for slot in used:
        assert panels.panels(slot), f"nothing fills the slot {slot!r}"
        for panel in panels.panels(slot):
            get_template(panel.template)


def test_panels_keep_their_order_and_registering_again_replaces():
    panels.register("test-slot", "memory/_import_judge_button.html", order=20)
    panels.register("test-slot", "judging/_queue_run.html", order=10)
    panels.register("test-slot", "memory/_import_judge_button.html", order=5)
    assert [p.template for p in panels.panels("test-slot")] == [
        "memory/_import_judge_button.html",
        "judging/_queue_run.html",
    ]
