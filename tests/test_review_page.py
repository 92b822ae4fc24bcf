"""The review page (untrusted text shown safely, the verdict, the form, other reviewers' feedback) and the
project overview (counts, agreement, recent critiques, reviewer progress)."""

from __future__ import annotations

import re

import pytest

from reviews.feedback import save_feedback
from reviews.models import Feedback, Membership, Role
from reviews.projects import create_project
from reviews.rendering import LONG_TEXT
from tests.conftest import add_sample, make_user

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def review(client, sample, user, query: str = "", **headers) -> str:
    client.force_login(user)
    response = client.get(f"/p/{sample.project.slug}/samples/{sample.pk}/{query}", **headers)
    assert response.status_code == 200
    return response.content.decode()


def main_of(body: str) -> str:
    return body.split("<main>", 1)[1].split("</main>", 1)[0]


def test_every_untrusted_field_is_escaped(client, personas):
    sample = add_sample(
        personas.project,
        XSS,
        judge_value="pass",
        inputs={XSS: XSS, "nested": {"k": XSS}},
        outputs=XSS,
        judge_rationale=XSS,
        expectations={"x": XSS},
        metadata={"m": XSS},
    )
    save_feedback(sample, personas.owner, "fail", XSS)
    save_feedback(sample, personas.reviewer, "pass", XSS)
    body = main_of(review(client, sample, personas.reviewer))
    assert "<script>window" not in body and "<img src=x" not in body
    assert body.count("&lt;script&gt;window.__xss=1&lt;/script&gt;") >= 7  # id, key, input, output, rationale, ...
    assert "window.__xss=2" in body  # as text only
    # The JSON parts are pretty-printed, and still escaped.
    assert (
        "&quot;k&quot;: &quot;&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=\\&quot;window.__xss=2"
        "\\&quot;&gt;&quot;"
    ) in body
    # The page's <title> too.
    assert "<title>&lt;script&gt;" in review(client, sample, personas.reviewer)


def test_whitespace_is_kept_and_json_pretty_printed(client, personas):
    sample = add_sample(
        personas.project,
        "ws",
        inputs={"question": "line 1\n    indented line 2", "history": [{"role": "user", "text": "hi"}]},
        outputs='{"answer": "Refund issued", "steps": [1, 2]}',
    )
    body = review(client, sample, personas.reviewer)
    assert re.search(r'<h3>question</h3>\s*<div class="pre">line 1\n    indented line 2</div>', body)
    assert '<div class="pre json">[\n  {\n    &quot;role&quot;: &quot;user&quot;,' in body
    assert (
        '<div class="pre json">{\n  &quot;answer&quot;: &quot;Refund issued&quot;,\n  &quot;steps&quot;: [\n    1,'
        in body
    )


def show_verdict(project) -> None:
    """Turn the judge-blind first pass off: the verdict shows from the start (projects made before it)."""
    project.judge_blind = False
    project.save(update_fields=["judge_blind"])


def test_long_text_is_collapsible_with_a_short_preview(client, personas):
    long_text = "word " * (LONG_TEXT // 4)
    tall_text = "Rain.\n" * 40  # few characters, many lines
    sample = add_sample(personas.project, "long", outputs=long_text, judge_rationale=tall_text)
    show_verdict(personas.project)
    body = review(client, sample, personas.reviewer)
    assert re.search(r'<div class="output" id="output"><h2>Output</h2>\s*<details class="long">\s*<summary>', body)
    assert (
        f'<div class="pre preview">{long_text[:400]}…</div><span class="muted">{len(long_text)} characters: show all</span>'
        in body
    )
    five_lines = "Rain.\n" * 5
    assert f'<div class="pre preview">{five_lines}Rain.…</div><span class="muted">240 characters: show all' in body
    assert f'<div class="pre">{tall_text}</div>' in body  # all of it, once opened
    short = add_sample(personas.project, "short", outputs="Short\nanswer.")
    assert "<details" not in review(client, short, personas.reviewer).split('id="output"')[1].split("</div>")[0]


def test_pairwise_shows_both_outputs_side_by_side(client, personas):
    project = create_project(
        personas.owner, name="Pairs", criterion="Which follows the instruction?", label_kind="pairwise"
    )
    sample = add_sample(project, "p1", judge_value="B", outputs="", output_a="First <answer>", output_b="Second answer")
    body = review(client, sample, personas.owner)
    assert re.search(r'<div class="pair">\s*<div class="output" id="output-a"><h2>Output A</h2>', body)
    assert '<div class="pre">First &lt;answer&gt;</div>' in body
    assert '<div class="output" id="output-b"><h2>Output B</h2>' in body
    assert 'data-key="1"' in body and 'value="A"' in body and 'value="B"' in body and 'data-key="2"' in body


def test_criterion_verdict_rationale_and_label_keys(client, personas):
    sample = add_sample(personas.project, "v1", judge_value="fail", judge_rationale="Too blunt.")
    show_verdict(personas.project)
    body = review(client, sample, personas.reviewer)
    assert re.search(
        r'<details class="criterion" data-criterion open>.*Is the reply&#x27;s tone appropriate\?', body, re.S
    )
    assert '<span class="badge" id="judge-value">fail</span>' in body
    assert '<div class="pre">Too blunt.</div>' in body
    assert re.search(r'value="pass" data-key="1">\s*<kbd>1</kbd> pass', body)
    assert re.search(r'value="fail" data-key="2">\s*<kbd>2</kbd> fail <span class="muted">\(judge\)</span>', body)
    assert 'data-action="agree"' in body and 'id="key-help"' in body


def test_a_blind_first_pass_does_not_offer_the_agree_key(client, personas):
    sample = add_sample(personas.project, "v1", judge_value="fail")  # new projects are judge-blind
    body = review(client, sample, personas.reviewer)
    assert 'data-action="agree"' not in body and "data-verdict-hidden" in body and 'id="key-note"' in body
    agree_help = re.search(r"<dt><kbd>a</kbd></dt><dd[^>]*>(.*?)</dd>", body).group(1)
    assert "hidden until you choose a label" in agree_help
    show_verdict(personas.project)
    body = review(client, sample, personas.reviewer)
    assert 'data-action="agree"' in body and "data-verdict-hidden" not in body
    assert "hidden until you choose a label" not in body


def test_ten_categories_use_keys_1_to_9_and_0(client, personas):
    categories = [f"c{n}" for n in range(1, 11)]
    project = create_project(personas.owner, name="Ten", criterion="c", label_kind="categorical", categories=categories)
    body = review(client, add_sample(project, "t1", judge_value="c10"), personas.owner)
    assert 'value="c9" data-key="9"' in body and 'value="c10" data-key="0"' in body


def test_a_categorical_schema_is_limited_to_ten_labels(client, personas):
    client.force_login(personas.owner)
    data = {
        "name": "Many",
        "criterion": "c",
        "label_kind": "categorical",
        "retrieval_k": "5",
        "categories_text": ", ".join(f"c{n}" for n in range(11)),
    }
    response = client.post("/projects/new/", data)
    assert response.status_code == 400
    assert "A category schema may have at most 10 categories (one digit key each)." in response.content.decode()


def test_others_feedback_shows_only_after_giving_yours(client, personas):
    sample = add_sample(personas.project, "o1", judge_value="pass")
    save_feedback(sample, personas.owner, "fail", "The owner's critique.")
    body = review(client, sample, personas.reviewer)
    assert "The owner&#x27;s critique." not in body
    assert "1 other reviewer reviewed this sample; their feedback shows once you have given yours." in body
    save_feedback(sample, personas.reviewer, "pass", "")
    body = review(client, sample, personas.reviewer)
    assert "The owner&#x27;s critique." in body and "Other reviewers" in body
    assert re.search(r'data-feedback-id="\d+"><span class="badge">fail</span> <strong>olivia</strong>', body)
    # A reviewer cannot delete the owner's feedback; the owner can delete the reviewer's.
    owner_feedback = Feedback.objects.get(author=personas.owner)
    assert f"/feedback/{owner_feedback.pk}/delete/" not in body
    body = review(client, sample, personas.owner)
    assert f"/feedback/{Feedback.objects.get(author=personas.reviewer).pk}/delete/" in body
    # Viewers give none, and see everyone's.
    body = review(client, sample, personas.viewer)
    assert "The owner&#x27;s critique." in body and 'id="feedback-form"' not in body


def test_my_feedback_is_loaded_for_editing_with_its_revision(client, personas):
    sample = add_sample(personas.project, "e1", judge_value="pass")
    save_feedback(sample, personas.reviewer, "fail", "First take.")
    save_feedback(sample, personas.reviewer, "fail", "Second <take>.", loaded_revision=1)
    body = review(client, sample, personas.reviewer)
    assert '<input type="hidden" name="revision" value="2">' in body
    assert re.search(r'value="fail" checked data-key="2"', body)
    assert ">Second &lt;take&gt;.</textarea>" in body
    assert "Delete my feedback" in body


def test_htmx_and_prefetch_get_the_item_alone_and_the_cache_knows(client, personas):
    sample = add_sample(personas.project, "h1")
    client.force_login(personas.reviewer)
    full = client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/")
    part = client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/", HTTP_HX_REQUEST="true")
    assert full.content.decode().startswith("<!doctype html>")
    assert part.content.decode().lstrip().startswith('<article id="review-item"')
    assert "HX-Request" in full["Vary"] and "HX-Request" in part["Vary"]


def test_another_projects_sample_is_404_and_unknown_ids_too(client, personas):
    theirs = add_sample(personas.other, "theirs")
    client.force_login(personas.owner)
    assert client.get(f"/p/{personas.project.slug}/samples/{theirs.pk}/").status_code == 404
    assert client.get(f"/p/{personas.project.slug}/samples/0/").status_code == 404
    client.force_login(personas.outsider)
    assert client.get(f"/p/{personas.other.slug}/samples/{theirs.pk}/").status_code == 404


def test_the_review_script_is_loaded_and_csrf_is_in_the_form(client, personas):
    sample = add_sample(personas.project, "c1")
    body = review(client, sample, personas.reviewer)
    assert "/static/review.js" in body
    assert re.search(
        r'<form method="post" action="[^"]+/feedback/\?filter=todo&amp;order=plain" id="feedback-form"', body
    )
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'hx-sync="this:drop"' in body  # a second submit while the first is in flight is dropped


# The overview ----------------------------------------------------------------------------------------------


def test_overview_counts_agreement_critiques_and_progress(client, personas):
    s = [add_sample(personas.project, f"s{n}", judge_value="" if n == 5 else "pass") for n in range(1, 6)]
    save_feedback(s[0], personas.reviewer, "pass", "Warm and clear.")
    save_feedback(s[1], personas.reviewer, "fail", "Promises a refund it cannot <guarantee>.")
    save_feedback(s[1], personas.owner, "fail", "Over-promises.")
    save_feedback(s[2], personas.owner, "pass", "")
    save_feedback(s[4], personas.owner, "fail", "No verdict here.")  # counts as reviewed, not in agreement
    client.force_login(personas.viewer)
    body = client.get(f"/p/{personas.project.slug}/").content.decode()
    figures = dict(re.findall(r'data-stat="(\w+)">([^<]+)<', body))
    # Agreement counts samples, each with its experts' one label: s1's two reviewers agree, so it counts once.
    assert figures == {"samples": "5", "reviewed": "4", "feedback": "5", "disagreements": "2"}
    # The imported judge, beside the (not yet run) aligned judge: always "pass", on too few samples to grade.
    assert 'data-headline="imported">0.00<' in body
    assert 'data-reading="imported">too few samples to judge (3 of 10 needed)<' in body
    assert "on 3 reviewed samples" in body
    assert "from 2 reviewers (1 confirmed by several who agreed)" in body
    assert 'data-baseline="overview">67%' in body
    assert 'data-reading="overview">too few samples to judge (3 of 10 needed)' in body
    assert "no better than chance" not in body.split('id="agreement"')[1]
    critiques = re.findall(r'<blockquote class="pre">([^<]*)</blockquote>', body)
    assert critiques[0] == "No verdict here." and len(critiques) == 4  # newest first, empty critiques left out
    assert "Promises a refund it cannot &lt;guarantee&gt;." in critiques
    progress = re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td><td>(\d+) / (\d+)</td>", body)
    assert progress == [("olivia", "Owner", "3", "5"), ("rafael", "Reviewer", "2", "5")]  # viewers give none
    assert "Start reviewing" not in body  # viewers do not review


def test_overview_of_an_empty_project(client, personas):
    client.force_login(personas.owner)
    body = client.get(f"/p/{personas.project.slug}/").content.decode()
    assert dict(re.findall(r'data-stat="(\w+)">([^<]+)<', body))["samples"] == "0"
    assert "No reviewed sample with an imported verdict yet." in body
    assert "No critiques yet." in body


def test_overview_progress_counts_only_this_projects_feedback(client, personas):
    shared = make_user("sam")
    for project in (personas.project, personas.other):
        Membership.objects.create(project=project, user=shared, role=Role.REVIEWER)
        save_feedback(add_sample(project, "x", judge_value="pass"), shared, "pass", "")
        save_feedback(add_sample(project, "y", judge_value="pass"), shared, "pass", "")
    client.force_login(shared)
    body = client.get(f"/p/{personas.project.slug}/").content.decode()
    assert ("sam", "Reviewer", "2", "2") in re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td><td>(\d+) / (\d+)</td>", body)


@pytest.mark.parametrize("who,status", [("viewer", 200), ("outsider", 404)])
def test_overview_access(client, personas, who, status):
    client.force_login(getattr(personas, who))
    assert client.get(f"/p/{personas.project.slug}/").status_code == status


@pytest.mark.django_db
def test_a_fresh_save_reads_now_not_0_minutes_ago(client, personas):
    sample = add_sample(personas.project, "fresh")
    Feedback.objects.create(project=personas.project, sample=sample, author=personas.reviewer, label="pass")
    client.force_login(personas.reviewer)
    body = client.get(f"/p/{personas.project.slug}/samples/{sample.pk}/").content.decode()
    assert "0 minutes" not in body and re.search(r"saved (now|\d+ seconds? ago)\)", body), body[:0]
