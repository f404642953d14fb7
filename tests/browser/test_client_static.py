"""Checks on the client's files that need no browser (they run with ``-m "not browser"``).

chat.js must stay ES5 so old browsers run it: it is parsed with an ES5 grammar (which
refuses let/const, arrows, classes, template literals) and searched for post-ES5 APIs.
Every UI string must have its Indonesian translation, with the same placeholders.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import tornado.locale
from calmjs.parse import asttypes, es5
from calmjs.parse.walkers import Walker

from handlers.pages import client_strings

ROOT = Path(__file__).resolve().parents[2]
CHAT_JS = ROOT / "static" / "chat.js"
LOCALE_DIR = ROOT / "locale"

# Globals and methods newer than ES5 (or missing from old browsers) that chat.js must not use.
POST_ES5_NAMES = {
    "fetch", "Promise", "Symbol", "Map", "Set", "WeakMap", "WeakSet", "Proxy", "Reflect", "async", "await",
    "classList", "includes", "startsWith", "endsWith", "padStart", "padEnd", "assign", "entries", "find",
    "findIndex", "closest", "append", "prepend", "replaceWith", "requestIdleCallback", "structuredClone",
}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
TEMPLATE_STRING = re.compile(r"""_\((["'])(.+?)\1\)""")


def test_chat_js_parses_as_es5_and_uses_no_newer_api():
    tree = es5(CHAT_JS.read_text(encoding="utf-8"))  # raises ECMASyntaxError on anything newer
    names = {node.value for node in Walker().filter(tree, lambda n: isinstance(
        n, asttypes.Identifier | asttypes.PropIdentifier))}
    assert "XMLHttpRequest" in names and "textContent" in names
    assert not names & POST_ES5_NAMES, sorted(names & POST_ES5_NAMES)
    assert "innerHTML" not in names and "insertAdjacentHTML" not in names and "outerHTML" not in names


def read_catalogue(code: str) -> dict[str, dict[str, str]]:
    """A locale CSV as Tornado reads it: {"unknown"|"singular"|"plural": {english: translation}}."""
    out: dict[str, dict[str, str]] = {}
    with open(LOCALE_DIR / f"{code}.csv", encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            kind = row[2] if len(row) > 2 else "unknown"
            out.setdefault(kind, {})[row[0]] = row[1]
    return out


def test_every_ui_string_has_an_indonesian_translation_with_the_same_placeholders():
    english, indonesian = read_catalogue("en_US"), read_catalogue("id_ID")
    assert {k: set(v) for k, v in english.items()} == {k: set(v) for k, v in indonesian.items()}
    for kind, table in english.items():
        assert all(source == target for source, target in table.items()), f"en_US.csv {kind} is not verbatim"

    used = set()
    for template in (ROOT / "templates").glob("*.html"):
        used |= {m.group(2) for m in TEMPLATE_STRING.finditer(template.read_text(encoding="utf-8"))}
    known = set().union(*english.values())
    assert used and used <= known, sorted(used - known)

    id_locale = tornado.locale.CSVLocale("id_ID", indonesian)
    for source in used:
        translated = id_locale.translate(source)
        assert translated != source, source
        assert set(PLACEHOLDER.findall(translated)) == set(PLACEHOLDER.findall(source)), source

    en_strings = client_strings(tornado.locale.CSVLocale("en_US", english))
    id_strings = client_strings(id_locale)
    assert en_strings.keys() == id_strings.keys()
    for key, text in en_strings.items():
        assert id_strings[key] != text, key
        assert set(PLACEHOLDER.findall(id_strings[key])) == set(PLACEHOLDER.findall(text)), key
