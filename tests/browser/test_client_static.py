"""Checks on the client's files that need no browser (they run with ``-m "not browser"``).

Every file in static/js must stay ES5 so old browsers run it: each is parsed with an ES5
grammar (which refuses let/const, arrows, classes, template literals) and searched for
post-ES5 APIs.  The pure-logic files touch neither the DOM nor the network, and the room page
loads every file, app.js last.  Every UI string must have its Indonesian translation, with the
same placeholders.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import unicodedata
from pathlib import Path

import pytest
import tornado.locale
from calmjs.parse import asttypes, es5
from calmjs.parse.walkers import Walker

from handlers.pages import client_strings

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "static" / "js"
JS_FILES = sorted(JS_DIR.glob("*.js"))
# The pure logic: tested in a blank page with no server (test_client_logic.py).
PURE_FILES = ("wordchars.js", "i18n.js", "time.js", "links.js", "timeline.js", "cursor.js", "outbox.js",
              "users.js")
LOCALE_DIR = ROOT / "locale"

# Globals and methods newer than ES5 (or missing from old browsers) that the client must not use.
POST_ES5_NAMES = {
    "fetch", "Promise", "Symbol", "Map", "Set", "WeakMap", "WeakSet", "Proxy", "Reflect", "async", "await",
    "classList", "includes", "startsWith", "endsWith", "padStart", "padEnd", "assign", "entries", "find",
    "findIndex", "closest", "append", "prepend", "replaceWith", "requestIdleCallback", "structuredClone",
}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
TEMPLATE_STRING = re.compile(r"""_\((["'])(.+?)\1\)""")


# What the pure files must not name: the DOM, the network, timers, storage (handed in instead).
IMPURE_NAMES = {
    "document", "XMLHttpRequest", "WebSocket", "location", "navigator", "sessionStorage", "localStorage",
    "setTimeout", "setInterval", "createElement", "getElementById", "addEventListener", "querySelector",
}
SCRIPT_SRC = re.compile(r"""<script src="\{\{ static_url\('js/([\w.-]+)'\) \}\}"></script>""")


def js_names(path: Path) -> set[str]:
    tree = es5(path.read_text(encoding="utf-8"))  # raises ECMASyntaxError on anything newer
    return {node.value for node in Walker().filter(tree, lambda n: isinstance(
        n, asttypes.Identifier | asttypes.PropIdentifier))}


def test_every_client_file_parses_as_es5_and_uses_no_newer_api():
    assert len(JS_FILES) >= 8, JS_FILES
    assert not (ROOT / "static" / "chat.js").exists()  # split into static/js/
    everything: set[str] = set()
    for path in JS_FILES:
        names = js_names(path)
        assert not names & POST_ES5_NAMES, (path.name, sorted(names & POST_ES5_NAMES))
        assert not names & {"innerHTML", "insertAdjacentHTML", "outerHTML"}, path.name
        everything |= names
    assert "XMLHttpRequest" in everything and "textContent" in everything


def test_pure_files_touch_neither_the_dom_nor_the_network():
    for name in PURE_FILES:
        names = js_names(JS_DIR / name)
        assert not names & IMPURE_NAMES, (name, sorted(names & IMPURE_NAMES))


def test_the_room_page_loads_every_client_file_once_app_last():
    loaded = SCRIPT_SRC.findall((ROOT / "templates" / "room.html").read_text(encoding="utf-8"))
    assert sorted(loaded) == [p.name for p in JS_FILES]
    assert loaded[-1] == "app.js"
    assert loaded.index("wordchars.js") < loaded.index("links.js")
    assert all(loaded.index(name) < loaded.index("render.js") for name in PURE_FILES)


def test_the_word_character_table_is_pythons():
    spec = importlib.util.spec_from_file_location("word_chars", ROOT / "scripts" / "word_chars.py")
    assert spec is not None and spec.loader is not None
    word_chars = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(word_chars)
    current = (JS_DIR / "wordchars.js").read_text(encoding="utf-8")
    written_for = re.search(r"unicode: '([\d.]+)'", current)
    assert written_for is not None
    if written_for.group(1) != unicodedata.unidata_version:
        pytest.skip(f"wordchars.js is for Unicode {written_for.group(1)}, this Python has "
                    f"{unicodedata.unidata_version}: run scripts/word_chars.py with the serving Python")
    assert current == word_chars.source(), "static/js/wordchars.js is stale: run python scripts/word_chars.py"


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


# Strings handed to the translator in the templates and the page handlers: _("…"), locale.translate("…"),
# self.locale.translate("…"), including the first (singular) argument of a plural call.
TRANSLATED_CALL = re.compile(r"""(?:\b_|\btranslate)\(\s*(["'])((?:(?!\1).)+)\1(?:\s*,\s*(["'])((?:(?!\3).)+)\3)?""")


def test_every_error_code_and_page_string_has_an_indonesian_translation():
    """Issue 12: nothing a person reads stays English on an Indonesian page.  Every error code in
    rooms/errors.py has a sentence for people (handlers/messages.py), and that sentence, every
    code-and-reason sentence, every string the templates and handlers/pages.py translate, and
    the client's table all have an Indonesian translation with the same placeholders."""
    from handlers import messages
    from rooms import errors

    indonesian = read_catalogue("id_ID")
    id_locale = tornado.locale.CSVLocale("id_ID", indonesian)
    codes = {cls.code for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.ChatError)}
    assert len(codes) >= 20, codes
    missing_codes = sorted(codes - set(messages.PAGE_MESSAGES))
    assert not missing_codes, f"error codes without words for people: {missing_codes}"
    reasons = {key.split("/", 1)[0] for key in messages.PAGE_MESSAGES if "/" in key}
    assert reasons <= codes, reasons - codes

    # where -> (singular, plural or None)
    used: dict[str, tuple[str, str | None]] = {
        f"PAGE_MESSAGES[{key!r}]": (text, None) for key, text in messages.PAGE_MESSAGES.items()}
    sources = [*(ROOT / "templates").glob("*.html"), ROOT / "handlers" / "pages.py", ROOT / "handlers" / "base.py"]
    for path in sources:
        for m in TRANSLATED_CALL.finditer(path.read_text(encoding="utf-8")):
            used[f"{path.name}: {m.group(2)}"] = (m.group(2), m.group(4))
    assert any(where.startswith("join.html") for where in used) and any(where.startswith("pages.py") for where in used)
    untranslated = []
    for where, (singular, plural) in used.items():
        forms = [(singular, id_locale.translate(singular))] if plural is None else [
            (singular, id_locale.translate(singular, plural, 1)), (plural, id_locale.translate(singular, plural, 2))]
        for source, translated in forms:
            if translated == source:
                untranslated.append(where)
            elif set(PLACEHOLDER.findall(translated)) != set(PLACEHOLDER.findall(source)):
                untranslated.append(f"{where} (placeholders differ)")
    assert not untranslated, f"no Indonesian for: {untranslated}"

    en_strings = client_strings(tornado.locale.CSVLocale("en_US", read_catalogue("en_US")))
    id_strings = client_strings(id_locale)
    assert {f"error_{code}" for code in codes} <= set(id_strings), "the client lacks words for some error code"
    assert [key for key, text in en_strings.items() if id_strings[key] == text] == []
