"""A message's text as HTML: code between backticks, links in the rest, everything escaped.

The rule (docs/client.md, "Code in messages"), the same in static/js/links.js (``codeParts``) and
held to it by tests/browser/cases/code.json:

- Scanning left to right, three backticks open a block that the next three close (it may span
  lines); else one backtick opens inline code that the next backtick on the same line closes.
- A block drops one line break right after its opening backticks and one right before its closing
  ones; the rest (indentation, blank lines, a language name on the first line) is kept as typed.
- Code that would be empty or only spaces, tabs and line breaks is not code: its backticks stay.
- Anything not closed stays as typed; backticks inside words work (a`b`c); nothing else of
  Markdown exists, and there is never any HTML from the text.
- Outside code, http(s) URLs are links (Tornado's ``linkify``, as before); inside code nothing is.
"""

from __future__ import annotations

import re

from tornado.escape import linkify, xhtml_escape

CODE = re.compile(r"```([\s\S]+?)```|`([^`\n]+)`")
BLANK = re.compile(r"[ \t\n]*")
LINK_ATTRIBUTES = 'rel="noopener noreferrer nofollow" target="_blank"'


def code_parts(text: str) -> list[tuple[str, str]]:
    """``text`` as ``("text" | "code" | "block", content)`` parts, adjacent text parts merged."""
    parts: list[tuple[str, str]] = []

    def add_text(chunk: str) -> None:
        if not chunk:
            return
        if parts and parts[-1][0] == "text":
            parts[-1] = ("text", parts[-1][1] + chunk)
        else:
            parts.append(("text", chunk))

    at = 0
    for m in CODE.finditer(text):
        add_text(text[at:m.start()])
        at = m.end()
        block = m.group(1)
        if block is not None:
            if block.startswith("\n"):
                block = block[1:]
            if block.endswith("\n"):
                block = block[:-1]
            kind, content = "block", block
        else:
            kind, content = "code", m.group(2)
        if BLANK.fullmatch(content):
            add_text(m.group(0))  # nothing but white space: not code
        else:
            parts.append((kind, content))
    add_text(text[at:])
    return parts


def message_html(text: str) -> str:
    """The inside of a message's ``<div class="text">`` (templates/event.html)."""
    out = []
    for kind, content in code_parts(text):
        if kind == "text":
            out.append(linkify(content, require_protocol=True, permitted_protocols=["http", "https"],
                               extra_params=LINK_ATTRIBUTES))
        elif kind == "code":
            out.append("<code>" + xhtml_escape(content) + "</code>")
        else:  # focusable, so a block that scrolls sideways can be scrolled by keyboard
            out.append('<pre tabindex="0"><code>' + xhtml_escape(content) + "</code></pre>")
    return "".join(out)
