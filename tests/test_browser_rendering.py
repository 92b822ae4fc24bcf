"""In Chromium: outputs shown as they read (chats, Markdown, a pairwise word diff) execute nothing and load nothing
remote, and a reviewer quotes a selected passage into the critique with the q key (stored with its span)."""

from __future__ import annotations

import json

import pytest

from reviews.models import Feedback, Membership, Role
from reviews.projects import create_project
from tests.conftest import add_sample, make_user
from tests.test_browser_review import log_in, wait_for_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each would set window.__xss, change the title or open a dialog if it ever ran.
MARKDOWN_XSS = "\n\n".join(
    [
        "# Answer with **bold** text",
        "<script>window.__xss = 1; document.title = 'pwned'</script>",
        '<img src=x onerror="window.__xss = 2; alert(2)">',
        "[click me](javascript:window.__xss=3;alert(3))",
        "![tracker](http://tracker.example/pixel.png)",
        '<a href="javascript:alert(4)" onclick="window.__xss=4">raw link</a>',
        "```html\n</code></pre><script>window.__xss = 5</script>\n```",
        "[docs](https://docs.example/page)",
    ]
)
CHAT_XSS = [
    {"role": "system", "content": 'Be kind. <svg onload="window.__xss = 6"></svg>'},
    {"role": "user", "content": [{"type": "text", "text": "**Hi** <img src=x onerror=alert(7)>"}]},
    {"role": "<script>window.__xss = 8</script>", "content": {"x": "<iframe src=javascript:alert(9)>"}},
    {"role": "assistant", "content": "Sure: [here](javascript:alert(10)) and ![i](https://cdn.example/i.png)"},
]


@pytest.fixture
def reviewer_and_project(live_server):
    owner, reviewer = make_user("olivia"), make_user("rafael")
    project = create_project(
        owner, name="Support tone", criterion="Is the reply's tone appropriate?", label_kind="pass_fail",
        judge_blind=False,
    )  # fmt: skip
    Membership.objects.create(project=project, user=reviewer, role=Role.REVIEWER)
    return reviewer, project


def watch(page, live_server) -> tuple[list[str], list[str]]:
    """Record every dialog opened and every request to another host than the test server."""
    dialogs: list[str] = []
    remote: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)

    def on_request(request) -> None:
        if not request.url.startswith(live_server.url):
            remote.append(request.url)

    page.on("request", on_request)
    return dialogs, remote


def test_xss_in_markdown_and_chat_content_executes_nothing(page, live_server, reviewer_and_project):
    reviewer, project = reviewer_and_project
    sample = add_sample(
        project,
        "xss",
        inputs={"messages": CHAT_XSS, "note": MARKDOWN_XSS},
        outputs=MARKDOWN_XSS,
        judge_rationale=json.dumps(CHAT_XSS),
    )
    dialogs, remote = watch(page, live_server)
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{sample.pk}/")
    wait_for_item(page, sample.pk)
    page.locator("#output a", has_text="click me").count()  # the page is fully rendered and parsed

    # Rendered as it reads: a heading, bold text, chat bubbles with their roles, links made safe.
    assert page.locator("#output h1").inner_text() == "Answer with bold text"
    assert page.locator(".io .chat").first.locator(".bubble").count() == 4
    assert (
        page.locator(".bubble.role-unknown .role").first.text_content().startswith("<script>window.__xss = 8</script>")
    )
    assert page.get_by_text('<img src=x onerror="window.__xss = 2; alert(2)">').first.is_visible()  # as text
    docs = page.locator('#output a[href="https://docs.example/page"]')
    assert docs.get_attribute("rel") == "noopener noreferrer"
    assert page.locator("main a[href^='javascript:' i]").count() == 0
    assert page.locator("main img, main svg, main script, main iframe").count() == 0

    # Open everything folded and click the links that were javascript: ones; then nothing may have run.
    for summary in page.locator("main details > summary").all():
        summary.click()
    page.locator("#output", has_text="click me").get_by_text("click me").click()
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.title() == "xss · Support tone · MemAlign"
    assert dialogs == []
    assert remote == []  # no remote image (nor anything else) was loaded


SELECT = """([selector, wanted]) => {
  // Select the first occurrence of `wanted` in the element's text, across the element's text nodes.
  const root = document.querySelector(selector);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  let text = "";
  for (let node = walker.nextNode(); node; node = walker.nextNode()) { nodes.push([node, text.length]); text += node.data; }
  const start = text.indexOf(wanted), end = start + wanted.length;
  if (start < 0) throw new Error(`not in the text: ${wanted}`);
  const at = (offset) => { let found = nodes[0]; for (const n of nodes) if (n[1] <= offset) found = n; return [found[0], offset - found[1]]; };
  const range = document.createRange();
  range.setStart(...at(start));
  range.setEnd(...at(end));
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}"""

OUTPUT = "Thanks for waiting.\n\nIt **promises a refund** by Friday, which\nwe cannot know.\n\n- Sorry again."


def test_a_selected_passage_is_quoted_into_the_critique_and_stored_with_its_span(
    page, live_server, reviewer_and_project
):
    reviewer, project = reviewer_and_project
    sample = add_sample(project, "quote", outputs=OUTPUT, judge_value="pass")
    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{sample.pk}/")
    wait_for_item(page, sample.pk)

    page.keyboard.press("2")  # fail; the cursor is in the critique box
    page.keyboard.press("Escape")
    page.keyboard.press("q")  # nothing selected: nothing quoted, and the page says why
    assert page.locator("#critique").input_value() == ""
    assert "Select a passage" in page.locator("#announcer").inner_text()

    passage = "promises a refund by Friday, which\nwe cannot"  # across the bold text and a line break
    page.evaluate(SELECT, ["#output [data-quote-source]", passage])
    page.keyboard.press("q")
    assert page.evaluate("document.activeElement.id") == "critique"
    assert page.locator("#critique").input_value() == f"“{' '.join(passage.split())}” "
    assert page.locator("#quote-cue").is_visible()
    page.keyboard.type("is a date the agent cannot promise; it should say it will check.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector('p.ok[role="status"]')

    feedback = Feedback.objects.get(author=reviewer, sample=sample)
    assert feedback.label == "fail"
    assert feedback.critique.startswith("“promises a refund by Friday, which we cannot”")
    assert feedback.quote_text == passage and feedback.quote_output == ""
    assert OUTPUT[feedback.quote_start : feedback.quote_end] == "promises a refund** by Friday, which\nwe cannot"

    # Back on the sample, the quoted passage is highlighted in the output.
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{sample.pk}/?filter=mine")
    wait_for_item(page, sample.pk)
    highlighted = " ".join(t.strip() for t in page.locator("#output b.quote").all_inner_texts())
    assert " ".join(highlighted.split()) == "promises a refund by Friday, which we cannot"


def test_a_quote_whose_output_was_edited_shows_as_text_without_highlight(page, live_server, reviewer_and_project):
    reviewer, project = reviewer_and_project
    sample = add_sample(project, "edited", outputs=OUTPUT, judge_value="pass")
    from reviews.feedback import quote, save_feedback

    save_feedback(sample, reviewer, "fail", "Promises a date.", quoted=quote(sample, "", "promises a refund by Friday"))
    sample.outputs = "Thanks for waiting.\n\nA refund comes once we have checked, usually within a week."
    sample.save(update_fields=["outputs"])

    log_in(page, live_server, "rafael")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{sample.pk}/?filter=mine")
    wait_for_item(page, sample.pk)
    assert page.locator("b.quote").count() == 0
    assert page.locator("#quote-shown").inner_text() == "promises a refund by Friday"  # the quote, as text
    page.goto(f"{live_server.url}/p/{project.slug}/memory/episodic/")
    row = page.locator(f'tr[data-feedback-id="{Feedback.objects.get(sample=sample).pk}"]')
    assert row.locator("[data-quote] q").inner_text() == "promises a refund by Friday"
    assert row.locator("[data-quote-stale]").is_visible()


def test_pairwise_outputs_side_by_side_with_a_word_diff(page, live_server):
    owner = make_user("olivia")
    project = create_project(
        owner, name="Pairs", criterion="Which is kinder?", label_kind="pairwise", judge_blind=False
    )
    chat = json.dumps([{"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "Yes, **today**."}])
    sample = add_sample(project, "p1", judge_value="A", outputs="", output_a=chat, output_b="No refund <b>today</b>.")
    log_in(page, live_server, "olivia")
    page.goto(f"{live_server.url}/p/{project.slug}/samples/{sample.pk}/")
    wait_for_item(page, sample.pk)
    a, b = page.locator("#output-a").bounding_box(), page.locator("#output-b").bounding_box()
    assert a["x"] < b["x"] and abs(a["y"] - b["y"]) < 2  # side by side
    assert page.locator("#output-a .bubble").count() == 2
    assert not page.locator(".word-diff").is_visible()
    page.locator("#word-diff > summary").click()
    assert page.locator(".word-diff del").first.is_visible() and page.locator(".word-diff ins").count() >= 1
    assert "<b>today</b>" in page.locator(".word-diff").inner_text()  # escaped, as text
    page.evaluate(SELECT, ["#output-b [data-quote-source]", "No refund"])
    page.keyboard.press("q")
    assert page.locator("#quote-which").inner_text() == "B"
