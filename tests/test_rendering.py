"""Judged texts as they read (reviews/rendering.py): chats as conversations, Markdown sanitised, quotes located."""

from __future__ import annotations

import json

import pytest

from reviews import rendering

OPENAI_CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Where is my **order**?"},
    {"role": "assistant", "content": "It ships *tomorrow*."},
]
ANTHROPIC_CHAT = [
    {"role": "user", "content": [{"type": "text", "text": "Summarise this."}]},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "A **short** summary."},
            {"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "<script>x</script>"}},
        ],
    },
]


def bubbles(html: str) -> int:
    return html.count('<li class="bubble')


@pytest.mark.parametrize("value", [OPENAI_CHAT, json.dumps(OPENAI_CHAT), json.dumps(OPENAI_CHAT, indent=2)])
def test_an_openai_chat_renders_as_one_bubble_per_message_with_its_role(value):
    html = rendering.render(value)
    assert bubbles(html) == 3
    assert '<li class="bubble role-system"><div class="role">system</div>' in html
    assert "<strong>order</strong>" in html and "<em>tomorrow</em>" in html  # each message's Markdown


def test_an_anthropic_chat_renders_text_blocks_as_markdown_and_other_blocks_as_escaped_json():
    html = rendering.render(json.dumps(ANTHROPIC_CHAT))
    assert bubbles(html) == 2
    assert '<div class="plain">Summarise this.</div>' in html and "<strong>short</strong>" in html
    assert '"name": "lookup"' in html or "&quot;name&quot;: &quot;lookup&quot;" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_messages_object_is_a_chat_too():
    assert bubbles(rendering.render({"messages": OPENAI_CHAT})) == 3


def test_an_unknown_role_is_shown_as_text_and_marked_unknown():
    html = rendering.render([{"role": "<img src=x onerror=alert(1)>", "content": "hi"}, {"role": 7, "content": "x"}])
    assert bubbles(html) == 2
    assert html.count("role-unknown") == 2 and html.count("(unknown role)") == 2
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<div class="role">7 <span' in html


@pytest.mark.parametrize(
    "content, shown",
    [
        (42, '<pre class="json">42</pre>'),
        ({"a": "<b>"}, "&lt;b&gt;"),
        (None, "(no content)"),
        ([1, "<two>"], "&quot;&lt;two&gt;&quot;"),
    ],
)
def test_non_string_content_is_shown_as_escaped_json_text(content, shown):
    html = rendering.render([{"role": "assistant", "content": content}])
    assert bubbles(html) == 1
    assert shown in html
    assert "<b>" not in html


def test_a_list_that_is_not_a_chat_is_indented_json():
    html = rendering.render('[{"name": "x"}, 3]')
    assert '<div class="pre json">' in html and "bubble" not in html


def test_plain_text_is_shown_as_written():
    html = rendering.render("line 1\n    indented <line> 2")
    assert html == '<div class="pre">line 1\n    indented &lt;line&gt; 2</div>'


def test_markdown_renders_as_formatted_text():
    html = rendering.render("# Title\n\n- **one**\n- `two`\n\nline one\nline two")
    assert "<h1>Title</h1>" in html and "<li><strong>one</strong></li>" in html and "<code>two</code>" in html
    assert "line one<br>" in html  # a single newline is a line break, as the writer saw it


@pytest.mark.parametrize(
    "payload",
    [
        "<script>window.__xss = 1</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<svg onload=alert(1)>",
        '<iframe src="http://evil.example/"></iframe>',
        "```\n</code></pre><script>alert(1)</script>\n```",
    ],
)
def test_raw_html_in_markdown_is_shown_as_text_never_as_html(payload):
    html = rendering.render(f"Hello {payload} there")
    for tag in ("<script", "<img", "<svg", "<iframe", 'onerror="', 'onload="'):
        assert tag not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "link",
    [
        "[click](javascript:alert(1))",
        "[click](JAVASCRIPT:alert(1))",
        "[click](data:text/html,<b>x)",
        "<javascript:alert(1)>",
    ],
)
def test_javascript_and_data_links_are_not_links(link):
    html = rendering.render(link)
    assert "href" not in html


def test_links_open_without_opener_or_referrer():
    html = rendering.render("[docs](https://example.com/a) and <https://example.com/b>")
    assert html.count('rel="noopener noreferrer"') == 2
    assert 'href="https://example.com/a"' in html


@pytest.mark.parametrize(
    "image", ["![chart](https://tracker.example/p.png)", '<img src="https://tracker.example/p.png">']
)
def test_remote_images_are_never_loaded(image):
    html = rendering.render(f"See {image}")
    assert "<img" not in html


def test_an_image_becomes_a_link_with_its_alt_text():
    html = rendering.render('![a "chart"](https://example.com/p.png)')
    assert 'href="https://example.com/p.png"' in html and "image: a “chart”" not in html
    assert "image: a &quot;chart&quot;" in html or 'image: a "chart"' in html


def test_long_texts_fold():
    assert rendering.is_long("x" * (rendering.LONG_TEXT + 1))
    assert rendering.is_long("line\n" * rendering.LONG_LINES)
    assert not rendering.is_long("short")


def test_word_diff_marks_removed_and_added_words_and_escapes_them():
    html = rendering.word_diff("the cat sat <b>", "the dog sat <b> down")
    assert "<del>cat</del><ins>dog</ins>" in html
    assert "<ins> down</ins>" in html
    assert "<b>" not in html and "&lt;b&gt;" in html


def test_word_diff_compares_chats_by_their_text():
    a = json.dumps([{"role": "assistant", "content": "Yes, today."}])
    b = json.dumps([{"role": "assistant", "content": "No, tomorrow."}])
    html = rendering.word_diff(a, b)
    assert "assistant: <del>Yes,</del><ins>No,</ins> <del>today.</del><ins>tomorrow.</ins>" in html


# Quotes


def test_a_passage_selected_from_rendered_markdown_is_found_in_the_raw_text():
    raw = "Intro.\n\nIt **promises** a refund\nby Friday.\n\n- and more"
    start, end = rendering.locate(raw, "promises a refund by Friday")
    assert raw[start:end] == "promises** a refund\nby Friday"
    assert rendering.span_matches(raw, start, end, "promises a refund by Friday")


def test_a_passage_selected_from_a_chat_is_found_in_the_raw_json():
    raw = json.dumps([{"role": "user", "content": "Line one\nline two caf\u00e9"}], ensure_ascii=True)
    start, end = rendering.locate(raw, "one line two café")
    assert raw[start:end] == "one\\nline two caf\\u00e9"
    html = rendering.render(raw, (start, end))
    assert '<div class="plain">Line <b class="quote">one\nline two café</b></div>' in html


def test_a_passage_that_is_not_there_has_no_span():
    assert rendering.locate("Some answer.", "another answer") is None
    assert rendering.locate("Some answer.", "…") is None


def test_a_quote_is_highlighted_across_paragraphs():
    raw = "First paragraph *ends* here.\n\nSecond one starts."
    html = rendering.render(raw, rendering.locate(raw, "ends here. Second one"))
    assert html.startswith('<div class="pre markdown">')
    # closed at the paragraph's end, reopened in the next
    assert '<p>First paragraph <em><b class="quote">ends</b></em><b class="quote"> here.</b></p>' in html
    assert '<p><b class="quote">Second one</b> starts.</p>' in html


def test_a_span_that_no_longer_matches_the_edited_text_is_stale():
    raw = "The refund arrives on Friday."
    start, end = rendering.locate(raw, "arrives on Friday")
    edited = "The refund will arrive next week, not on Friday."
    assert not rendering.span_matches(edited, start, end, "arrives on Friday")
    assert not rendering.span_matches(raw, None, None, "arrives on Friday")
    assert not rendering.span_matches(raw, 5, 500, "arrives on Friday")


def test_quote_markers_in_the_text_itself_cannot_forge_a_highlight():
    html = rendering.render(f"a {rendering.OPEN}b{rendering.CLOSE} c")
    assert "quote" not in html


def test_a_quote_span_inside_a_json_key_renders_without_highlight():
    raw = json.dumps([{"role": "user", "content": "hi"}])
    start = raw.index("content")
    html = rendering.render(raw, (start + 1, start + 4))
    assert "quote" not in html and bubbles(html) == 1 and '<div class="plain">hi</div>' in html
