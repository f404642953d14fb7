"""One rendering of an event: the server's templates/event.html and the client's
Obrolan.render.event (static/js/render.js) give the same markup for the same event.

The markup is compared as the browser sees it: both are parsed by Chromium and written out
canonically (elements, attributes sorted, text exactly; nothing normalised away).  Cases: message,
join and leave; own and others'; continued or not; links (tests/browser/cases/links.json plus
randomised texts); HTML in names and texts; both languages.  First without a server, the partial
rendered by Tornado directly; then through the real room page, where the live page's events must be
render.event's markup as well (decorated: local times, avatar colours).

The grouping rule and the link rule are also checked on the Python side here against the shared
case files, which test_client_logic.py runs against the JavaScript.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import tornado.locale
import tornado.template
from playwright.async_api import expect

from handlers.pages import GROUP_WINDOW_S, client_strings, continues, utc_clock
from handlers.richtext import message_html
from rooms import Event
from tests.browser.harness import TEST_TIMEOUT_S, chromium, client_page, person
from tests.browser.test_client_static import read_catalogue
from tests.chatclient import Api

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"
GROUPING = json.loads((CASES / "grouping.json").read_text(encoding="utf-8"))
LINKS = json.loads((CASES / "links.json").read_text(encoding="utf-8"))
CODE = json.loads((CASES / "code.json").read_text(encoding="utf-8"))
RENDER_FILES = ("wordchars.js", "i18n.js", "time.js", "links.js", "timeline.js", "dom.js", "render.js")
BASE = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
ROOM = "markup"

# Canonical markup of a node as Chromium parsed it: tags, attributes sorted, text as it is.
CANON_JS = """
window.canon = function canon(node) {
  if (node.nodeType === 3) { return node.data.replace(/&/g, '&amp;').replace(/</g, '&lt;'); }
  if (node.nodeType !== 1) { return ''; }
  const tag = node.tagName.toLowerCase();
  const attrs = Array.from(node.attributes, a => a.name + '=' + JSON.stringify(a.value)).sort();
  return '<' + [tag].concat(attrs).join(' ') + '>' + Array.from(node.childNodes, canon).join('') + '</' + tag + '>';
};
// The one element an HTML fragment (a rendered partial) parses to.
window.parsed = function (html) {
  const holder = document.createElement('template');
  holder.innerHTML = html;
  if (holder.content.children.length !== 1) { throw new Error('not one element: ' + html); }
  return holder.content.children[0];
};
"""

# Both sides of each case: [canonical server markup, canonical client markup].
COMPARE_JS = """({cases, strings}) => {
  const t = Obrolan.i18n.translator(strings);
  return cases.map(c => [canon(parsed(c.html)), canon(Obrolan.render.event(document, c.event, {
    me: c.me, cont: Obrolan.timeline.continues(c.prev, c.event), t: t}))]);
}"""


def ts(at_s: float) -> str:
    """A timestamp ``at_s`` seconds after BASE, as the server writes them."""
    when = BASE + timedelta(seconds=at_s)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def locale(code: str) -> tornado.locale.Locale:
    return tornado.locale.CSVLocale(code, read_catalogue(code))


def partial() -> tornado.template.Template:
    return tornado.template.Loader(str(ROOT / "templates")).load("event.html")


def render_partial(events: list[Event], me: str, loc: tornado.locale.Locale) -> list[dict[str, Any]]:
    """Each event through templates/event.html as room.html includes it, with its JSON for the client."""
    template, prev, out = partial(), None, []
    for e in events:
        html = template.generate(e=e, prev=prev, me=me, continues=continues, clock=utc_clock,
                                 message_html=message_html, _=loc.translate).decode()
        out.append({"html": html, "event": e.public(), "prev": prev.public() if prev else None, "me": me})
        prev = e
    return out


class Conversation:
    """Events with ascending ids, ``at`` seconds after BASE."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, type_: str, user: str, at: float, text: str | None = None) -> Conversation:
        self.events.append(Event(len(self.events) + 1, type_, ROOM, user, ts(at), text))
        return self


def conversation() -> list[Event]:
    c = Conversation()
    c.add("join", "Budi", 0).add("message", "Budi", 5, "halo semua").add("message", "Budi", 15, "apa kabar?")
    c.add("join", "Ani", 20).add("message", "Ani", 30, "baik").add("message", "Ani", 329.999, "masih di sini")
    c.add("message", "Ani", 630, "lima menit lebih kemudian").add("message", "Budi", 640, "oke")
    c.add("message", "Ani", 650, "giliran saya").add("join", "Citra", 660).add("message", "Citra", 665, "hai")
    c.add("leave", "Citra", 700).add("message", "Citra", 710, "kembali tanpa bergabung?")
    c.add("message", "<img src=x onerror=alert(1)>", 720, "<b>tebal</b> & 'kutip' \"ganda\" &amp; &lt;i&gt;")
    c.add("join", "<img src=x onerror=alert(1)>", 725)
    c.add("message", "émile", 730, "baris satu\nbaris dua\ttab  dua spasi ")
    c.add("message", "ßtraße", 735, "ß").add("message", "😀 Smiley", 740, "😀")
    c.add("message", "ǆemal", 745, "x").add("message", "看看", 750, "看这个https://example.com 和 https://example.com")
    c.add("message", "Ani", 755, "javascript:alert(1) www.example.com https://example.com/a?b=1&c=2.")
    c.add("message", "ani", 760, "another person, another spelling").add("leave", "Budi", 800)
    for i, case in enumerate(LINKS["cases"]):
        c.add("message", "Budi", 900 + i, case["text"])
    for i, case in enumerate(CODE["cases"]):
        c.add("message", "Ani", 1000 + i, case["text"])
    return c.events


FUZZ_TOKENS = [*"htps:/w.-_()&\"'<>,;!?=#%[]a1 \n\t", "é", "看", "😀", "\u00a0", "\u3000", "\ufeff", "ß",
               "http://", "https://", "www.", "example.com", "(a)", "HTTP://", "ftp://", "&amp;", "&quot;",
               "`", "`", "```", "```\n", "\n```", "`x`", "<b>"]


def fuzz_texts(count: int, seed: int = 20240501) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(FUZZ_TOKENS) for _ in range(rng.randint(1, 14))) for _ in range(count)]


class Parts(HTMLParser):
    """A message's text element as the parts a person sees: text, url (a link), code, block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[list[str]] = []
        self.open: list[str] = []
        self.pre_tabindex: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(tag)
        if tag == "pre":
            self.pre_tabindex.append(dict(attrs).get("tabindex"))
            self.parts.append(["block", ""])
        elif tag == "code" and "pre" not in self.open[:-1]:
            self.parts.append(["code", ""])
        elif tag == "a":
            self.parts.append(["url", ""])

    def handle_endtag(self, tag: str) -> None:
        self.open.pop()

    def handle_data(self, data: str) -> None:
        if not {"a", "code", "pre"} & set(self.open) and (not self.parts or self.parts[-1][0] != "text"):
            self.parts.append(["text", ""])
        self.parts[-1][1] += data


def text_parts(html: str) -> Parts:
    """The parts of the message text in one rendered event."""
    inside = html.split('class="text">', 1)[1].rsplit("</div></li>", 1)[0]
    parts = Parts()
    parts.feed(inside)
    parts.close()
    return parts


class Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.texts: list[str] = []
        self._in_a = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"] or "")
            self.texts.append("")
            self._in_a = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_a = False

    def handle_data(self, data: str) -> None:
        if self._in_a:
            self.texts[-1] += data


def test_grouping_follows_the_shared_cases_in_python():
    assert GROUP_WINDOW_S == GROUPING["window_s"]
    for case in GROUPING["cases"]:
        prev = SimpleNamespace(**case["prev"]) if case["prev"] else None
        assert continues(prev, SimpleNamespace(**case["event"])) is case["continues"], case["why"]


def test_links_follow_the_shared_cases_in_the_template():
    template = partial()
    for case in LINKS["cases"]:
        e = Event(1, "message", ROOM, "Budi", ts(0), case["text"])
        html = template.generate(e=e, prev=None, me="Ani", continues=continues, clock=utc_clock,
                                 message_html=message_html, _=locale("en_US").translate)
        anchors = Anchors()
        anchors.feed(html.decode())
        assert anchors.hrefs == case["links"], case["why"]
        assert anchors.texts == case["links"], case["why"]


def test_code_follows_the_shared_cases_in_the_template():
    template = partial()
    for case in CODE["cases"]:
        e = Event(1, "message", ROOM, "Budi", ts(0), case["text"])
        html = template.generate(e=e, prev=None, me="Ani", continues=continues, clock=utc_clock,
                                 message_html=message_html, _=locale("en_US").translate).decode()
        parts = text_parts(html)
        assert parts.parts == case["parts"], case["why"]
        assert parts.pre_tabindex == ["0"] * sum(kind == "block" for kind, _ in case["parts"]), case["why"]


@pytest.mark.browser
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_the_template_and_the_client_render_every_event_alike():
    events = conversation()
    fuzz = Conversation()
    for i, text in enumerate(fuzz_texts(400)):
        fuzz.add("message", "Fuzz", i, text)
    async with chromium() as browser:
        client = await client_page(browser, *RENDER_FILES)
        await client.run(f"() => {{ {CANON_JS} }}")
        for code in ("en_US", "id_ID"):
            loc = locale(code)
            for me in ("Ani", "<img src=x onerror=alert(1)>"):
                cases = render_partial(events, me, loc)
                pairs = await client.run(COMPARE_JS, {"cases": cases, "strings": client_strings(loc)})
                for case, (server, browser_side) in zip(cases, pairs, strict=True):
                    assert browser_side == server, (code, me, case["event"])
            cases = render_partial(fuzz.events, "Ani", loc)
            pairs = await client.run(COMPARE_JS, {"cases": cases, "strings": client_strings(loc)})
            for case, (server, browser_side) in zip(cases, pairs, strict=True):
                assert browser_side == server, case["event"]["text"]
        assert await client.run("() => document.body.children.length") == 0  # nothing ran from a text
    # What the cases covered, so a change to the conversation cannot quietly drop a kind.
    classes = {" ".join(sorted(c["html"].split('class="', 1)[1].split('"', 1)[0].split()))
               for c in render_partial(events, "Ani", locale("en_US"))}
    assert classes >= {"event message", "event message mine", "cont event message", "cont event message mine",
                       "event join notice", "event leave notice"}


@pytest.mark.browser
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_the_room_page_and_the_live_client_render_events_alike(chat_server):
    api = Api(chat_server.url)
    sockets = []
    try:
        budi = await api.join("Budi", ROOM)
        sockets.append(await budi.ws())  # Budi is present: his join
        await sockets[-1].handshake()
        for text in ("halo semua", "lihat https://example.com/a?q=1&b=2 (penting)."):
            assert (await budi.post(text)).status == 201
        async with chromium() as browser:
            # In UTC: the page remembers the reader's zone (a cookie) and the server's page then
            # writes times in it, which render.event (always "HH:MM UTC") matches only in UTC.
            ani = await person(browser, chat_server, "Ani", timezone_id="UTC")
            await ani.join(ROOM)
            await ani.say("halo Budi")
            await ani.say("<b>tebal</b> & http://example.org/x_(y)")
            await expect(ani.texts).to_have_count(4)
            citra = await api.join("Citra", ROOM)
            sockets.append(await citra.ws())
            await sockets[-1].handshake()
            assert (await citra.post("www.example.com javascript:alert(1) 看这个https://example.com")).status == 201
            assert (await citra.leave()).status == 200
            assert (await budi.post("lagi")).status == 201
            await expect(ani.texts).to_have_count(6)
            await expect(ani.page.locator("#messages .event.notice")).to_have_count(4)  # Budi, Ani, Citra in; Citra out
            events = (await budi.poll(limit=200)).json["events"]
            assert [e["type"] for e in events].count("message") == 6

            # The live page: every event on it is render.event's markup, decorated as the page does.
            page = ani.page
            await page.evaluate(f"() => {{ {CANON_JS} }}")
            live = await page.evaluate("""events => {
              const t = Obrolan.i18n.translator(JSON.parse(document.getElementById('chat').getAttribute('data-i18n')));
              const lang = document.documentElement.getAttribute('lang');
              const shown = [...document.querySelectorAll('#messages > li[data-id]')].map(canon);
              const rendered = events.map((e, i) => canon(Obrolan.render.decorate(Obrolan.render.event(document, e, {
                me: 'Ani', cont: Obrolan.timeline.continues(events[i - 1] || null, e), t: t}), lang)));
              return [shown, rendered];
            }""", events)
            assert live[0] == live[1]

            # The room page as the server sends it, parsed but never run.
            resp = await page.request.get(page.url)
            assert resp.ok
            html = await resp.text()
            client = await client_page(browser, *RENDER_FILES)
            await client.run(f"() => {{ {CANON_JS} }}")
            server, rendered = await client.run("""({html, events}) => {
              const doc = new DOMParser().parseFromString(html, 'text/html');
              const t = Obrolan.i18n.translator(JSON.parse(doc.getElementById('chat').getAttribute('data-i18n')));
              const me = doc.getElementById('chat').getAttribute('data-me');
              return [[...doc.querySelectorAll('#messages > li')].map(canon),
                      events.map((e, i) => canon(Obrolan.render.event(document, e, {
                        me: me, cont: Obrolan.timeline.continues(events[i - 1] || null, e), t: t})))];
            }""", {"html": html, "events": events})
            assert len(server) == len(events) == 10
            for got, want, e in zip(rendered, server, events, strict=True):
                assert got == want, e
            assert sum('class="event message mine cont"' in s for s in server) == 1  # Ani's second message
            assert sum('class="event message cont"' in s for s in server) == 1  # Budi's second
            assert sum("<a " in s for s in server) == 2  # example.com/a?q=1&b=2 and example.org/x_(y)
            ani.assert_no_page_errors()
    finally:
        for sock in sockets:
            sock.close()
        api.close()
