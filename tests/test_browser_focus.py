"""In Chromium: every control of the review page is reached with Tab, and the focused one always shows it."""

from __future__ import annotations

import pytest

from reviews.projects import create_project
from tests.conftest import add_sample, make_user
from tests.test_browser_review import log_in, wait_for_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    name: el.dataset.action || el.id || el.name || el.getAttribute("href") || el.tagName + ":" + el.textContent.trim().slice(0, 20),
    tag: el.tagName,
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
  };
}"""


def test_tab_reaches_every_review_control_with_a_visible_focus(page, live_server):
    owner = make_user("olivia")
    project = create_project(
        owner, name="Pairs", criterion="Which is kinder?", label_kind="pairwise", judge_blind=False
    )
    first = add_sample(project, "p1", judge_value="A", outputs="", output_a="Yes, **today**.", output_b="No.")
    add_sample(project, "p2", judge_value="B", outputs="", output_a="One.", output_b="Two.")
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{first.pk}/")
    wait_for_item(page, first.pk)

    seen = []
    for _ in range(60):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused["tag"] == "BODY":
            break
        seen.append(focused)
    names = [f["name"] for f in seen]
    for control in ("help", "label", "critique", "agree", "next"):
        assert control in names, f"{control} is not reached by Tab: {names}"
    assert any(f["tag"] == "SUMMARY" for f in seen)  # the criterion and the word diff fold and unfold by keyboard
    assert any(f["tag"] == "BUTTON" and "Save" in f["name"] for f in seen)
    no_outline = [f["name"] for f in seen if not f["outline"]]
    assert no_outline == [], f"focused without a visible outline: {no_outline}"
