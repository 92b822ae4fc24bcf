"""Showing judged texts as they read: chat transcripts as conversations, Markdown as formatted text, a word diff.

Everything here is untrusted (judge inputs and outputs). Markdown goes through markdown-it-py with raw HTML off,
then nh3 (an allow-list sanitiser): no script, no event attribute, only http(s)/mailto links (with
rel="noopener noreferrer"), and no image is ever loaded (an image becomes a link to it). Everything else is
escaped by format_html. A reviewer's quote is a character span in the raw output text (see `locate`); it is
highlighted by putting two private-use marker characters at its ends before rendering and turning them into
<b class="quote"> tags before sanitising, so the HTML parser in nh3 closes and reopens the highlight across
paragraphs and list items.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

import nh3
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

LONG_TEXT = 1_500  # characters; a text longer than this, or taller than LONG_LINES, starts folded
LONG_LINES = 30
PREVIEW_CHARS = 400
PREVIEW_LINES = 6
MAX_DIFF_WORDS = 20_000  # per side: difflib is quadratic at worst, and a diff that long reads as noise anyway

# Roles a chat message can have (OpenAI's and Anthropic's); any other is shown too, marked unknown.
KNOWN_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}

OPEN, CLOSE = "\ue000", "\ue001"  # the quote's ends while rendering; removed from the raw text first
QUOTE_OPEN, QUOTE_CLOSE = '<b class="quote">', "</b>"

_markdown = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(["table", "strikethrough"])


def _image_as_link(self, tokens, idx, options, env) -> str:
    """An image in Markdown: a link to it, never loaded (a remote image would tell its host who reads it)."""
    token = tokens[idx]
    alt = self.renderInline(token.children or [], options, env) if token.children else ""
    return format_html('<a href="{}">image: {}</a>', token.attrGet("src") or "", mark_safe(alt) if alt else "—")


_markdown.add_render_rule("image", _image_as_link)

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href"}, "b": {"class"}, "ol": {"start"}}  # no style=: the CSP forbids inline styles


_PLAIN_TOKENS = {"paragraph_open", "paragraph_close", "inline", "text", "softbreak", "hardbreak"}


def is_markdown(text: str) -> bool:
    """Whether `text` uses any Markdown (emphasis, a list, a heading, a link, code...) beyond paragraphs: plain
    text is shown exactly as written, its spaces and line breaks kept."""
    for token in _markdown.parse(text):
        if token.type not in _PLAIN_TOKENS or any(c.type not in _PLAIN_TOKENS for c in token.children or []):
            return True
    return False


def markdown(text: str) -> SafeString:
    """Return Markdown rendered as sanitised HTML (the quote markers, if any, as highlight tags)."""
    html = _markdown.render(text).replace(OPEN, QUOTE_OPEN).replace(CLOSE, QUOTE_CLOSE)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
    return mark_safe(clean.replace(OPEN, "").replace(CLOSE, ""))  # nh3's output, markers left in attributes gone


@dataclass(frozen=True)
class Message:
    role: str
    known: bool
    body: SafeString


def chat_messages(value: Any) -> list[dict] | None:
    """Return `value` as a list of chat messages (dicts with a role), parsing JSON text; None if it is not one."""
    if isinstance(value, str):
        value = _json(value)
    if isinstance(value, dict) and set(value) == {"messages"}:
        value = value["messages"]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in value)
    ):
        return value
    return None


def _json(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] not in ("{", "[") or stripped[-1:] not in ("}", "]"):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def _message(message: dict) -> Message:
    role = message.get("role")
    role_text = role if isinstance(role, str) else json.dumps(role, ensure_ascii=False)
    return Message(role=role_text, known=role_text in KNOWN_ROLES, body=_content(message.get("content")))


def _content(content: Any) -> SafeString:
    """A message's content: a string as Markdown; Anthropic's blocks one by one (text as Markdown, others as
    JSON); anything else (a number, an object, nothing) as JSON text."""
    if isinstance(content, str):
        return _text(content, "plain")
    if isinstance(content, list) and all(isinstance(b, dict) for b in content):
        return format_html_join("", "{}", ((_block(b),) for b in content))
    if content is None:
        return mark_safe('<p class="muted">(no content)</p>')
    return _json_block(content)


def _block(block: dict) -> SafeString:
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        return _text(block["text"], "plain")
    return _json_block(block)


def _text(text: str, plain_class: str) -> SafeString:
    """A text: Markdown formatted, or plain text kept as written in a block of class `plain_class`."""
    if is_markdown(text):
        return markdown(text)
    return _marked(format_html('<div class="{}">{}</div>', plain_class, text))


def _json_block(value: Any, top: bool = False) -> SafeString:
    """A JSON value indented: a block of its own (`top`), or preformatted inside a message."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    html = '<div class="pre json">{}</div>' if top else '<pre class="json">{}</pre>'
    return _marked(format_html(html, text))


def _marked(html: SafeString) -> SafeString:
    """Escaped text with the quote markers, if any, turned into highlight tags (then sanitised, which makes
    the tags nest properly)."""
    if OPEN not in html and CLOSE not in html:
        return html
    return mark_safe(
        nh3.clean(
            html.replace(OPEN, QUOTE_OPEN).replace(CLOSE, QUOTE_CLOSE),
            tags={"pre", "div", "b"},
            attributes={"b": {"class"}, "pre": {"class"}, "div": {"class"}},
        )
    )


def conversation(messages: list[dict]) -> SafeString:
    """Return chat messages as a conversation: one bubble per message, headed by its role."""
    bubbles = []
    for message in map(_message, messages):
        role_class = re.sub(r"[^a-z]", "", message.role.lower()) if message.known else "unknown"
        unknown = "" if message.known else mark_safe(' <span class="muted">(unknown role)</span>')
        bubbles.append(
            format_html(
                '<li class="bubble role-{}"><div class="role">{}{}</div><div class="body">{}</div></li>',
                role_class,
                message.role,
                unknown,
                message.body,
            )
        )
    return format_html('<ol class="chat">{}</ol>', mark_safe("".join(bubbles)))


def render(value: Any, quote: tuple[int, int] | None = None) -> SafeString:
    """Return a judged value as it reads: chat messages as a conversation, other JSON as indented JSON, Markdown
    formatted, plain text as written. `quote` is a character span of the raw text to highlight (ignored unless `value` is text)."""
    if not isinstance(value, str):
        messages = chat_messages(value)
        return conversation(messages) if messages else _json_block(value, top=True)
    text = value.replace(OPEN, "\ufffd").replace(CLOSE, "\ufffd")  # the markers must be ours alone
    parsed = _json(text)
    if quote:
        start, end = quote
        marked = text[:start] + OPEN + text[start:end] + CLOSE + text[end:]
        parsed_marked = _json(marked)
        if _same_structure(parsed_marked, parsed):  # not so if a marker fell inside a JSON key or number
            text, parsed = marked, parsed_marked
    if parsed is not None:
        messages = chat_messages(parsed)
        return conversation(messages) if messages else _json_block(parsed, top=True)
    if is_markdown(text):
        return format_html('<div class="pre markdown">{}</div>', markdown(text))
    return _text(text, "pre")


def _same_structure(marked: Any, plain: Any) -> bool:
    """Whether the marked text parses as the plain one with the markers in string values only (not in keys)."""
    return _unmarked(marked) == plain


def _unmarked(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(OPEN, "").replace(CLOSE, "")
    if isinstance(value, list):
        return [_unmarked(item) for item in value]
    if isinstance(value, dict):
        return {key: _unmarked(item) for key, item in value.items()}
    return value


def is_long(text: str) -> bool:
    text = text or ""
    return len(text) > LONG_TEXT or text.count("\n") >= LONG_LINES


def preview(text: str) -> str:
    """Return the start of a long text: at most PREVIEW_LINES lines and PREVIEW_CHARS characters, then "…"."""
    lines = (text or "").split("\n")
    shown = "\n".join(lines[:PREVIEW_LINES])
    if len(shown) > PREVIEW_CHARS:
        shown = shown[:PREVIEW_CHARS]
    return shown + "…" if len(shown) < len(text or "") else shown


def plain_text(value: Any) -> str:
    """Return a value as plain text: chat messages as "role: content" paragraphs, other JSON as JSON."""
    messages = chat_messages(value)
    if messages:
        return "\n\n".join(f"{m.get('role')}: {_plain_content(m.get('content'))}" for m in messages)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _plain_content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b["text"] if isinstance(b, dict) and isinstance(b.get("text"), str) else json.dumps(b, ensure_ascii=False)
            for b in content
        )
    return json.dumps(content, ensure_ascii=False)


def word_diff(a: str, b: str) -> SafeString:
    """Return the word-level difference from text `a` to text `b`: removed words in <del>, added in <ins>."""
    old, new = re.split(r"(\s+)", plain_text(a)), re.split(r"(\s+)", plain_text(b))
    if len(old) > 2 * MAX_DIFF_WORDS or len(new) > 2 * MAX_DIFF_WORDS:
        return format_html('<p class="muted">Too long to compare word by word ({} words at most).</p>', MAX_DIFF_WORDS)
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(escape("".join(old[i1:i2])))
            continue
        if i2 > i1:
            parts.append(format_html("<del>{}</del>", "".join(old[i1:i2])))
        if j2 > j1:
            parts.append(format_html("<ins>{}</ins>", "".join(new[j1:j2])))
    return format_html('<div class="pre word-diff">{}</div>', mark_safe("".join(parts)))


# Quotes: where a passage the reviewer selected on the rendered page sits in the raw text.


@dataclass(frozen=True)
class _Key:
    char: str
    start: int
    end: int


def _keys(text: str) -> list[_Key]:
    """The letters and digits of `text` (lower-cased) with their spans: what a reader sees of it, whatever the
    Markdown punctuation, whitespace and, in JSON text, escapes (\\n, \\u00e9) around them."""
    keys, json_text = [], text.lstrip()[:1] in ("[", "{")
    i = 0
    while i < len(text):
        char, width = text[i], 1
        if json_text and char == "\\" and i + 1 < len(text):
            width = 2
            if text[i + 1] == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                char, width = chr(int(text[i + 2 : i + 6], 16)), 6
            else:
                char = ""  # \n, \t, \" and the like: whitespace or punctuation on screen
        if char.isalnum():
            lower = char.lower()
            keys.append(_Key(lower if len(lower) == 1 else char, i, i + width))
        i += width
    return keys


def _key_string(text: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text if c.isalnum())


def locate(raw: str, passage: str) -> tuple[int, int] | None:
    """Return the span of `raw` that reads as `passage` (its first occurrence), from its first letter or digit
    to its last; None when it is not there (or holds no letter or digit)."""
    wanted = _key_string(passage)
    keys = _keys(raw)
    found = "".join(k.char for k in keys).find(wanted) if wanted else -1
    if found < 0:
        return None
    return keys[found].start, keys[found + len(wanted) - 1].end


def span_matches(raw: str, start: int | None, end: int | None, passage: str) -> bool:
    """Whether `raw[start:end]` still reads as `passage` (False once the text was edited under the quote)."""
    if start is None or end is None or not 0 <= start < end <= len(raw):
        return False
    whole = _keys(raw)  # the span's own escapes read as they do in the whole text
    inside = "".join(k.char for k in whole if start <= k.start and k.end <= end)
    return bool(inside) and inside == _key_string(passage)
