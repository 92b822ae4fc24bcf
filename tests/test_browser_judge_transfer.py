"""In a real browser: an owner exports a judge from the memory page and imports it as a new project."""

import json
import re

import pytest
from playwright.sync_api import expect

from memory.models import Principle, PrincipleSource
from reviews.models import Feedback, Project
from tests.conftest import add_feedback, add_sample
from tests.test_browser_site import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_export_a_judge_and_import_it_as_a_new_project(page, live_server, personas, tmp_path):
    project = personas.project
    feedback = add_feedback(add_sample(project, "s1"), personas.reviewer, "fail", "Too curt <really>.")
    principle = Principle.objects.create(project=project, text="Curt replies fail.", label="fail", pinned=True)
    PrincipleSource.objects.create(principle=principle, feedback=feedback, feedback_revision=1)

    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/memory/")
    with page.expect_download() as download:
        page.click("#judge-export")
    path = tmp_path / "judge.json"
    download.value.save_as(path)
    document = json.loads(path.read_text())
    assert document["format"] == "memalign-judge/1" and document["principles"][0]["sources"] == [0]

    page.goto(f"{live_server.url}/projects/")
    page.click("#judge-import")
    page.set_input_files("#id_file", str(tmp_path / "judge.json"))
    page.fill("#id_name", "Moved judge")
    page.click("#judge-import-form button[type=submit]")
    copy = Project.objects.get(name="Moved judge")
    page.wait_for_url(re.compile(rf"/p/{copy.slug}/memory/$"))
    expect(page.locator("#principles")).to_contain_text("Curt replies fail.")
    assert Feedback.objects.get(project=copy).critique == "Too curt <really>."

    (tmp_path / "bad.json").write_text('{"format": "memalign-judge/1", "criterion": ""}')
    page.goto(f"{live_server.url}/judges/import/")
    page.set_input_files("#id_file", str(tmp_path / "bad.json"))
    page.click("#judge-import-form button[type=submit]")
    expect(page.locator("#import-error")).to_contain_text("Nothing was imported.")
    expect(page.locator("#import-error")).to_contain_text("label_schema: Field required")
    assert Project.objects.count() == 3
