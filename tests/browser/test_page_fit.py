"""The room page fits its screen (issue 12, items 2 and 7): long unbroken words, URLs, names and room
names wrap inside the page instead of running off it or being cut, on a desktop and a 390 px phone;
the phone header keeps one row in every connection state, in English and in Indonesian.

Everything is measured in the page (bounding boxes, scrollWidth against clientWidth): what a person
would see as text under the sidebar, off the edge, or cut with an ellipsis.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.harness import TEST_TIMEOUT_S, Person, chromium, person

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 780}
RECONNECT_TIMEOUT_MS = 30_000  # the backoff may be several seconds in when the server is back

LONG_ROOM = "Pemrograman Berorientasi Objek kelas B semester genap angkatan 4"  # 64, the most a room may have
LONG_NAME = "Sari Wulandari Kusumawardhani"  # the reader: spaces, but longer than the header has room for
UNBROKEN_NAME = "Bartholomew_Wijayakusumaningrat"  # another person: one 31-character word
LONG_WORD = "a" * 120
LONG_URL = "https://example.com/tugas/" + "pemrograman-berorientasi-objek" * 4

# What overflows, as a list of readable findings (empty when everything fits):
# - the document or the message list scrolls sideways;
# - an element of the timeline (bubble, name, time) sticks out of the message list's box;
# - an element of the header sticks out of the viewport;
# - a name (room, welcome, user list, message author) is cut: its text is wider than its box.
# Visually hidden elements (in a 1 px box, clipped on purpose for screen readers) are skipped.
MEASURE_OVERFLOW = """() => {
  const found = [];
  const vw = document.documentElement.clientWidth;
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth) found.push(`document ${doc.scrollWidth} > ${doc.clientWidth}`);
  const scroller = document.getElementById('scroller');
  if (scroller.scrollWidth > scroller.clientWidth) {
    found.push(`message list ${scroller.scrollWidth} > ${scroller.clientWidth}`);
  }
  const box = scroller.getBoundingClientRect();
  const tiny = el => { const r = el.getBoundingClientRect(); return r.width <= 1 || r.height <= 1; };
  const shown = el => {
    if (tiny(el)) return false;
    for (let up = el.parentElement; up; up = up.parentElement) {  // inside a 1 px clipped box: hidden
      if (tiny(up) && getComputedStyle(up).overflow === 'hidden') return false;
    }
    return true;
  };
  const name = el => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).replace(/ /g, '.') : '')
    + ' "' + el.textContent.slice(0, 24) + '"';
  for (const el of document.querySelectorAll('#messages *, #outbox *')) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.left < box.left - 0.5 || r.right > box.right + 0.5) {
      found.push(`${name(el)} at ${Math.round(r.left)}..${Math.round(r.right)} outside the message list `
                 + `${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  for (const el of document.querySelectorAll('.chat-header *')) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.right > vw + 0.5) {
      found.push(`${name(el)} at ${Math.round(r.left)}..${Math.round(r.right)} off the screen`);
    }
  }
  for (const el of document.querySelectorAll('.room-name, .welcome, .users .name, #messages .meta .user, #status')) {
    if (shown(el) && el.scrollWidth > el.clientWidth) {
      found.push(`${name(el)} cut: ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  return found;
}"""


async def assert_fits(who: Person, where: str) -> None:
    found = await who.page.evaluate(MEASURE_OVERFLOW)
    assert found == [], f"{who.name}'s page on {where} overflows: {found}"


@pytest.mark.parametrize("screen", ["desktop", "phone"])
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_long_words_urls_and_names_wrap_inside_the_page_in_own_and_others_copies(chat_server, screen):
    viewport = DESKTOP if screen == "desktop" else PHONE
    phone = {"is_mobile": True, "has_touch": True} if screen == "phone" else {}
    async with chromium() as browser:
        sari = await person(browser, chat_server, LONG_NAME, viewport=viewport, **phone)
        bart = await person(browser, chat_server, UNBROKEN_NAME, viewport=viewport, **phone)
        await sari.join(LONG_ROOM)
        await bart.join(LONG_ROOM)
        for who in (sari, bart):
            await expect(who.page.locator("#user-count")).to_have_text("2")
        for who in (sari, bart):
            for text in (LONG_WORD, LONG_URL):
                await who.say(text)
                for reader in (sari, bart):
                    await expect(reader.page.locator(f"#messages li[data-user='{who.name}'] .text",
                                                     has_text=text)).to_be_visible()
        # a message in the outbox (not sent yet) is a bubble of its own: the same rule
        await sari.page.context.set_offline(True)
        await sari.say("b" * 120)
        await expect(sari.page.locator("#outbox li")).to_have_count(1)

        for who in (sari, bart):
            await assert_fits(who, screen)
            # the time of every message (own and others') is on screen, beside its bubble
            for time in await who.page.locator("#messages .event.message:not(.cont) time").all():
                await time.scroll_into_view_if_needed()
                await expect(time).to_be_in_viewport()
            # the whole room name and the reader's whole name can be read on the page
            await expect(who.page.locator(".room-name")).to_have_text("#" + LONG_ROOM)
            await expect(who.page.locator(".welcome")).to_contain_text(who.name)
            for name in (LONG_NAME, UNBROKEN_NAME):
                await expect(who.page.locator("#users .name", has_text=name)).to_have_text(name)
        await sari.page.context.set_offline(False)
        for who in (sari, bart):
            who.assert_no_page_errors()


NO_WEBSOCKET = "delete window.WebSocket; window.WebSocket = undefined;"
NO_EVENTSOURCE = "delete window.EventSource; window.EventSource = undefined;"
HEADER_ROOM = "Pemrograman Berorientasi Objek"  # the "#Pemrograman Be…"
BADGE_KEYS = ["live", "connecting", "reconnecting", "reconnecting_in", "compat", "fallback", "offline", "history"]

# The header's parts as the person sees them: the title block, the badge, "Try now" and "Refresh" when
# shown, Leave; and how tall the header's content is.
MEASURE_HEADER = """() => {
  const header = document.querySelector('.chat-header');
  const parts = {};
  for (const [key, sel] of [['title', '.room-title'], ['connection', '.connection'], ['badge', '#status'],
                            ['retry', '#retry'], ['refresh', '.refresh'], ['leave', 'button.leave']]) {
    const el = document.querySelector(sel);
    if (!el || !el.getClientRects().length) continue;
    const r = el.getBoundingClientRect();
    parts[key] = {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height,
                  cut: el.scrollWidth > el.clientWidth};
  }
  const style = getComputedStyle(header);
  const content = header.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
  const badge = header.querySelector('#status').textContent;
  return {parts, content, width: document.documentElement.clientWidth, badge};
}"""

# Every label the badge can show, from the page's own translated strings (#chat[data-i18n]), with
# "Try now" beside the reconnecting ones, as app.js shows them.  "Connecting…" and "Reconnecting…"
# last only a moment in a real page: this makes sure each label fits, not only those a test can hold.
SHOW_BADGE = """key => {
  const strings = JSON.parse(document.getElementById('chat').getAttribute('data-i18n'));
  const badge = document.getElementById('status');
  badge.textContent = strings[key].replace('%(s)d', '10');
  badge.setAttribute('data-state', key === 'reconnecting_in' ? 'reconnecting' : key === 'history' ? 'static' : key);
  document.getElementById('retry').hidden = key !== 'reconnecting_in';
}"""


async def assert_header_one_row(who: Person, what: str) -> None:
    m = await who.page.evaluate(MEASURE_HEADER)
    parts = m["parts"]
    assert {"title", "connection", "badge", "leave"} <= parts.keys(), (what, m)
    where = f"{who.name}'s header with {m['badge']!r} ({what}): {m}"
    # One row: the title, the badge and Leave side by side (each starts above where the others end;
    # "Try now" or "Refresh" sits under the badge, in the same column)...
    row = [parts[name] for name in ("title", "connection", "badge", "leave")]
    assert max(p["top"] for p in row) < min(p["bottom"] for p in row), where
    for name in ("retry", "refresh"):
        if name in parts:
            c, p = parts["connection"], parts[name]
            assert c["top"] <= p["top"] and p["bottom"] <= c["bottom"] and c["left"] <= p["left"], (name, where)
    # ...and the header no taller than its tallest part: nothing wrapped onto a line of its own
    assert m["content"] <= max(p["height"] for p in row) + 1, where
    for name, p in parts.items():
        assert p["left"] >= -0.5 and p["right"] <= m["width"] + 0.5, (name, where)
        assert not p["cut"], (name, where)


@pytest.mark.parametrize("lang", ["en-US", "id-ID"])
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S * 2)
async def test_phone_header_keeps_one_row_in_every_connection_state(chat_server, lang):
    phone = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "locale": lang}
    async with chromium() as browser:
        sari = await person(browser, chat_server, "Sari Wulandari", **phone)
        await sari.join(HEADER_ROOM)
        await assert_header_one_row(sari, "live")

        compat = await person(browser, chat_server, "Lia", **phone)
        await compat.page.context.add_init_script(NO_WEBSOCKET)
        await compat.join(HEADER_ROOM, live_state="compat")
        basic = await person(browser, chat_server, "Hadi", **phone)
        await basic.page.context.add_init_script(NO_WEBSOCKET + NO_EVENTSOURCE)
        await basic.join(HEADER_ROOM, live_state="fallback")
        nojs = await person(browser, chat_server, "Nojs", java_script_enabled=False, **phone)
        await nojs.join(HEADER_ROOM, live_state="static")
        for who in (compat, basic, nojs):
            await assert_header_one_row(who, await who.status.get_attribute("data-state"))
        await sari.page.goto(sari.page.url + "?before=2")  # older messages: the page is not live
        await expect(sari.status).to_have_attribute("data-state", "static")
        await assert_header_one_row(sari, "history")
        await sari.page.go_back()
        await expect(sari.status).to_have_attribute("data-state", "live")

        for key in BADGE_KEYS:
            await sari.page.evaluate(SHOW_BADGE, key)
            await assert_header_one_row(sari, f"every label: {key}")

        await chat_server.stopped()
        for who in (sari, compat, basic):
            await expect(who.status).to_have_attribute("data-state", "reconnecting")
            await expect(who.page.locator("#retry")).to_be_visible()  # "Reconnecting in N s…" and "Try now"
            await assert_header_one_row(who, "reconnecting")
        await sari.page.context.clear_cookies()  # the session is gone: retrying cannot help
        await chat_server.started()
        await expect(sari.status).to_have_attribute("data-state", "offline", timeout=RECONNECT_TIMEOUT_MS)
        await assert_header_one_row(sari, "offline")
        for who in (sari, compat, basic, nojs):
            who.assert_no_page_errors()
