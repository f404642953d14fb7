"""The chat page in a real headless Chromium: the eight paths of issue 4 and the outbox surviving a
reload, one test each.

Every assertion is about what a person sees: text on the page, the connection badge,
the user list.  Waits are Playwright's ``expect`` with a bounded timeout, never sleeps.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Route, WebSocketRoute, expect

from tests.browser.harness import TEST_TIMEOUT_S, chromium, person
from tests.chatclient import Api

pytestmark = pytest.mark.browser

NO_WEBSOCKET = "delete window.WebSocket; window.WebSocket = undefined;"
# A WebSocket that never connects, as behind a proxy that refuses upgrades.
# The tab goes to the background / comes back (what the browser reports when it does).
SET_VISIBILITY = """state => {
  Object.defineProperty(document, 'visibilityState', {value: state, configurable: true});
  Object.defineProperty(document, 'hidden', {value: state === 'hidden', configurable: true});
  document.dispatchEvent(new Event('visibilitychange'));
}"""
RECONNECT_TIMEOUT_MS = 30_000  # the backoff may be several seconds in when the server is back
BLOCKED_WEBSOCKET = """
window.WebSocket = function () {
  var self = this;
  setTimeout(function () { if (self.onclose) { self.onclose({ code: 1006 }); } }, 20);
};
window.WebSocket.prototype.send = function () { throw new Error('not open'); };
window.WebSocket.prototype.close = function () {};
"""


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_two_users_chat_live_both_ways_and_see_join_and_leave(chat_server):
    async with chromium() as browser:
        ani = await person(browser, chat_server, "Ani")
        budi = await person(browser, chat_server, "Budi")
        await ani.join("Proyek PBO")
        await expect(ani.page.locator("#user-count")).to_have_text("1")
        await budi.join("Proyek PBO")

        await expect(ani.page.locator("#user-count")).to_have_text("2")
        await expect(ani.page.locator("#users")).to_contain_text("Budi")
        await expect(ani.page.locator("#messages")).to_contain_text("Budi joined")
        await expect(budi.page.locator("#users")).to_contain_text("Ani")

        await ani.say("halo Budi, apa kabar?")
        await expect(budi.message("halo Budi, apa kabar?")).to_be_visible()
        await expect(ani.page.locator("#messages .mine .text")).to_have_text(["halo Budi, apa kabar?"])

        await budi.page.locator("#text").press_sequentially("baik")
        await expect(ani.page.locator("#typing")).to_have_text("Budi is typing…")
        await budi.page.press("#text", "Enter")
        await expect(ani.message("baik")).to_be_visible()
        await expect(ani.page.locator("#typing")).to_have_text("")
        for who in (ani, budi):
            await expect(who.texts).to_have_text(["halo Budi, apa kabar?", "baik"])

        await ani.page.evaluate(SET_VISIBILITY, "hidden")
        await budi.say("kamu di mana?")
        await budi.say("halo?")
        await expect(ani.page).to_have_title("(2) Proyek PBO · Obrolan")
        await ani.page.evaluate(SET_VISIBILITY, "visible")
        await expect(ani.page).to_have_title("Proyek PBO · Obrolan")

        await budi.page.click("button.leave")
        await expect(budi.page.locator("#room")).to_have_value("Proyek PBO")  # back on the join form
        await expect(ani.page.locator("#user-count")).to_have_text("1")
        await expect(ani.page.locator("#users")).not_to_contain_text("Budi")
        await expect(ani.page.locator("#messages")).to_contain_text("Budi left")
        for who in (ani, budi):
            who.assert_no_page_errors()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_browser_without_websocket_falls_back_to_server_sent_events_and_chats(chat_server):
    async with chromium() as browser:
        lia = await person(browser, chat_server, "Lia")
        await lia.page.context.add_init_script(NO_WEBSOCKET)
        wira = await person(browser, chat_server, "Wira")
        tono = await person(browser, chat_server, "Tono")  # has WebSocket, but it never connects
        await tono.page.context.add_init_script(BLOCKED_WEBSOCKET)

        await lia.join("lobby", live_state="compat")
        assert await lia.page.evaluate("typeof window.WebSocket") == "undefined"
        await expect(lia.status).to_have_text("Live (compatibility mode)")
        await wira.join("lobby")
        await expect(lia.page.locator("#users")).to_contain_text("Wira")
        await expect(lia.page.locator("#user-count")).to_have_text("2")

        await lia.say("halo dari browser lama")
        await expect(wira.message("halo dari browser lama")).to_be_visible()
        await wira.say("halo juga, Lia")
        await expect(lia.message("halo juga, Lia")).to_be_visible()
        await expect(lia.page.locator("#outbox li")).to_have_count(0)
        await expect(lia.texts).to_have_text(["halo dari browser lama", "halo juga, Lia"])

        await tono.join("lobby", live_state="compat")  # blocked WebSocket: one rung down
        await expect(tono.status).to_have_text("Live (compatibility mode)")
        await expect(wira.page.locator("#users")).to_contain_text("Tono")
        await tono.say("saya juga tanpa WebSocket")
        await expect(wira.message("saya juga tanpa WebSocket")).to_be_visible()
        await expect(lia.message("saya juga tanpa WebSocket")).to_be_visible()
        await expect(tono.texts).to_have_text(["halo dari browser lama", "halo juga, Lia",
                                               "saya juga tanpa WebSocket"])
        for who in (lia, wira, tono):
            who.assert_no_page_errors()


@pytest.mark.server(presence_grace=120.0)  # Sari, who only posts, stays present throughout
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_without_javascript_join_read_history_and_post_by_forms(chat_server):
    api = Api(chat_server.url)
    try:
        sari = await api.join("Sari", "arsip")
        for i in range(1, 56):
            resp = await sari.post(f"pesan nomor {i}")
            assert resp.status == 201, resp.body
        async with chromium() as browser:
            nojs = await person(browser, chat_server, "Nojs", java_script_enabled=False)
            await nojs.join("arsip", live_state=None)
            page = nojs.page
            await expect(nojs.status).to_have_text("Not live")
            await expect(page.get_by_role("link", name="Refresh")).to_be_visible()
            await expect(nojs.message("pesan nomor 55")).to_be_visible()
            # The last 50 events: Sari's join is id 1, her messages 2..56, and the page view made
            # Nojs present (his join, id 57): 49 messages and his join.
            await expect(nojs.texts).to_have_count(49)
            await expect(nojs.texts.first).to_have_text("pesan nomor 7")
            await expect(page.locator("#users")).to_contain_text("Nojs")

            await page.get_by_role("link", name="Older messages").click()
            await expect(nojs.texts.first).to_have_text("pesan nomor 1")
            await expect(nojs.texts).to_have_count(6)
            await page.get_by_role("link", name="Back to the newest messages").click()
            await expect(nojs.texts.last).to_have_text("pesan nomor 55")

            await page.fill("#text", "saya membaca tanpa JavaScript")
            await page.click("button.send")
            await expect(nojs.texts.last).to_have_text("saya membaca tanpa JavaScript")
            await expect(page.locator("#messages .mine .text")).to_have_text(["saya membaca tanpa JavaScript"])

            newest = (await sari.poll(limit=2)).json["events"]  # paging: no presence side effect
            assert [(e["id"], e["type"], e["user"], e.get("text")) for e in newest] == [
                (57, "join", "Nojs", None), (58, "message", "Nojs", "saya membaca tanpa JavaScript")]

            await page.click("button.leave")
            await expect(page.locator("#room")).to_have_value("arsip")
            nojs.assert_no_page_errors()

            # The same history with JavaScript: "Older messages" loads in place.
            jaya = await person(browser, chat_server, "Jaya")
            await jaya.join("arsip")
            # Nojs's message (58) and leave (59), Jaya's join (60): the last 50 are ids 11..60
            await expect(jaya.texts.first).to_have_text("pesan nomor 10")
            await jaya.page.get_by_role("link", name="Older messages").click()
            await expect(jaya.texts.first).to_have_text("pesan nomor 1")
            await expect(jaya.texts).to_have_count(56)
            await expect(jaya.page.get_by_role("link", name="Older messages")).to_be_hidden()  # nothing older
            assert "before=" not in jaya.page.url
            jaya.assert_no_page_errors()
    finally:
        api.close()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_reload_mid_conversation_misses_nothing_doubles_nothing_announces_nothing(chat_server):
    async with chromium() as browser:
        ani = await person(browser, chat_server, "Ani")
        budi = await person(browser, chat_server, "Budi")
        await ani.join("ruang")
        await budi.join("ruang")
        expected = []
        for i in range(1, 4):
            await ani.say(f"Ani {i}")
            await expect(budi.message(f"Ani {i}")).to_be_visible()
            await budi.say(f"Budi {i}")
            await expect(ani.message(f"Budi {i}")).to_be_visible()
            expected += [f"Ani {i}", f"Budi {i}"]

        await ani.page.reload(wait_until="commit")
        await budi.say("while Ani reloads")  # lands before, during or after the new page's connect
        await expect(ani.status).to_have_attribute("data-state", "live")
        await budi.say("after the reload")
        expected += ["while Ani reloads", "after the reload"]
        await expect(ani.message("after the reload")).to_be_visible()
        await ani.say("back again")
        expected.append("back again")
        await expect(budi.message("back again")).to_be_visible()

        for who in (ani, budi):
            await expect(who.texts).to_have_text(expected)
            notices = await who.page.locator("#messages .event.notice .notice-text").all_text_contents()
            assert [n for n in notices if "Ani" in n] == ["Ani joined"], notices
            who.assert_no_page_errors()
        await expect(budi.page.locator("#users")).to_contain_text("Ani")


@pytest.mark.server(store="sqlite")
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_server_restart_shows_reconnecting_then_live_and_loses_nothing(chat_server):
    api = Api(chat_server.url)
    try:
        citra = await api.join("Citra", "tahan")  # a bearer token survives the restart
        async with chromium() as browser:
            ani = await person(browser, chat_server, "Ani")
            budi = await person(browser, chat_server, "Budi")
            await ani.join("tahan")
            await budi.join("tahan")
            await ani.say("before the restart")
            await expect(budi.message("before the restart")).to_be_visible()

            await chat_server.stopped()
            for who in (ani, budi):
                await expect(who.status).to_have_attribute("data-state", "reconnecting")
                await expect(who.status).to_contain_text("Reconnecting")
            await ani.say("typed while the server was down")
            pending = ani.page.locator("#outbox li")
            await expect(pending).to_have_count(1)
            await expect(pending).to_contain_text("Waiting for the connection")

            await chat_server.started()
            for i in (1, 2):  # most likely before the pages' next try: they must catch up
                assert (await citra.post(f"sent while you were away {i}")).status == 201
            for who in (ani, budi):
                await expect(who.status).to_have_attribute("data-state", "live", timeout=RECONNECT_TIMEOUT_MS)
            await expect(pending).to_have_count(0)
            for who in (ani, budi):
                await expect(who.message("typed while the server was down")).to_have_count(1)
                await expect(who.message("sent while you were away 2")).to_be_visible()

            history = (await citra.poll(limit=200)).json["events"]  # paging: no presence side effect
            stored = [e["text"] for e in history if e["type"] == "message"]
            assert sorted(stored) == sorted(["before the restart", "typed while the server was down",
                                             "sent while you were away 1", "sent while you were away 2"])
            for who in (ani, budi):
                await expect(who.texts).to_have_text(stored)
                await expect(who.page.locator(f"#messages li[data-id='{history[-1]['id']}']")).to_have_count(1)
                ids = [int(i) for i in await who.page.locator("#messages li[data-id]").evaluate_all(
                    "els => els.map(e => e.getAttribute('data-id'))")]
                assert ids == list(range(ids[0], ids[-1] + 1)), ids  # no gap, no duplicate
                assert ids[-1] == history[-1]["id"]
                await expect(who.page.locator("#messages .event.system")).to_have_count(0)  # no reset
                who.assert_no_page_errors()
    finally:
        api.close()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_unsent_message_survives_reloads_and_is_stored_and_shown_once(chat_server):
    api = Api(chat_server.url)
    network = {"mode": "up"}  # "down": Ani's WebSocket and /messages fail; "no_acks": acks are lost

    async def ws_route(ws: WebSocketRoute) -> None:
        if network["mode"] == "down":
            await ws.close(code=4000)  # not 1000: that would mean "you left"
            return
        server = ws.connect_to_server()
        if network["mode"] == "no_acks":
            ws.on_message(server.send)
            server.on_message(lambda frame: None if json.loads(frame)["type"] == "ack" else ws.send(frame))

    async def http_route(route: Route) -> None:
        if network["mode"] == "down":
            await route.abort("internetdisconnected")
        else:
            await route.fallback()

    text = "typed offline, then reloaded twice"
    try:
        citra = await api.join("Citra", "simpan")
        async with chromium() as browser:
            ani = await person(browser, chat_server, "Ani")
            budi = await person(browser, chat_server, "Budi")
            await ani.page.route_web_socket(lambda url: urlsplit(url).path.endswith("/ws"), ws_route)
            await ani.page.route(lambda url: urlsplit(url).path.endswith("/messages"), http_route)
            await ani.join("simpan")
            await budi.join("simpan")
            pending = ani.page.locator("#outbox li")

            network["mode"] = "down"
            await ani.page.reload()
            await expect(ani.status).to_have_attribute("data-state", "reconnecting")
            await ani.say(text)
            await expect(pending.locator(".text")).to_have_text([text])
            await expect(pending).to_contain_text("Waiting for the connection")
            await ani.page.reload()  # still offline: the page comes back with the message waiting
            await expect(ani.status).to_have_attribute("data-state", "reconnecting")
            await expect(pending.locator(".text")).to_have_text([text])
            await expect(pending).to_contain_text("Waiting for the connection")
            await expect(ani.message(text)).to_have_count(0)

            network["mode"] = "no_acks"  # back online, but the ack never reaches the page
            await ani.page.evaluate("window.dispatchEvent(new Event('online'))")
            await expect(budi.message(text)).to_have_count(1, timeout=RECONNECT_TIMEOUT_MS)
            await expect(pending.locator(".text")).to_have_text([text])  # stored, not acknowledged

            network["mode"] = "up"
            await ani.page.reload()  # the server-rendered page has it; the outbox sends it again
            await expect(ani.status).to_have_attribute("data-state", "live")
            await expect(pending).to_have_count(0)
            for who in (ani, budi):
                await expect(who.message(text)).to_have_count(1)
            await expect(ani.page.locator("#messages .mine .text")).to_have_text([text])  # sent, as Ani's
            history = (await citra.poll(limit=200)).json["events"]
            assert [e["text"] for e in history if e["type"] == "message"] == [text]
            await ani.page.reload()  # nothing left to send
            await expect(ani.status).to_have_attribute("data-state", "live")
            await expect(pending).to_have_count(0)
            await expect(ani.message(text)).to_have_count(1)
            for who in (ani, budi):
                who.assert_no_page_errors()
    finally:
        api.close()


HTML_NAME = "<img src=x onerror=alert(1)>"
HTML_ROOM = "<svg onload=alert(2)>&amp;"
HTML_TEXTS = [
    "<script>alert(3)</script>",
    "<img src=x onerror=alert(4)> & <b>bold</b>",
    '<a href="javascript:alert(5)">klik</a>',
    "javascript:alert(6) [x](javascript:alert(7)) &lt;i&gt; &amp;",
    "see https://example.com/a?q=1&b=2 now",
]


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_html_and_script_in_names_rooms_and_messages_show_as_text(chat_server):
    async with chromium() as browser:
        evil = await person(browser, chat_server, HTML_NAME)
        good = await person(browser, chat_server, "Good")
        await evil.join(HTML_ROOM)
        await good.join(HTML_ROOM)
        await expect(good.page.locator(".room-name")).to_have_text("#" + HTML_ROOM)
        await expect(good.page).to_have_title(HTML_ROOM + " · Obrolan")
        await expect(good.page.locator("#users")).to_contain_text(HTML_NAME)

        await evil.page.locator("#text").press_sequentially("x")
        await expect(good.page.locator("#typing")).to_have_text(HTML_NAME + " is typing…")
        await evil.page.fill("#text", "")
        for text in HTML_TEXTS:
            await evil.say(text)
        await expect(good.texts).to_have_text(HTML_TEXTS)  # rendered live by the client (render.js)
        nojs = await person(browser, chat_server, "Plain", java_script_enabled=False)
        await nojs.join(HTML_ROOM, live_state=None)
        await good.page.reload()
        for who in (good, nojs, evil):  # rendered by the server (and re-rendered by the client)
            page = who.page
            await expect(who.texts).to_have_text(HTML_TEXTS)
            await expect(page.locator("#messages")).to_contain_text(HTML_NAME)
            await expect(page.locator("#chat img, #chat script, #chat svg, #chat b, #chat i")).to_have_count(0)
            links = page.locator("#messages a")
            await expect(links).to_have_count(1)
            await expect(links).to_have_attribute("href", "https://example.com/a?q=1&b=2")
            await expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
            who.assert_no_page_errors()  # no alert() ran anywhere


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_keyboard_only_join_chat_and_leave(chat_server):
    async with chromium() as browser:
        kiki = await person(browser, chat_server, "Kiki")
        page = kiki.page
        keys = page.keyboard

        async def focused() -> dict:
            return await page.evaluate("""() => {
              const el = document.activeElement, style = getComputedStyle(el);
              return {id: el.id, cls: el.className, tag: el.tagName,
                      outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
            }""")

        async def assert_focus_visible(what: dict) -> None:
            assert what["outline"] != "none" and what["width"] >= 2, what

        await page.goto(chat_server.url + "/?room=papan ketik")
        assert (await focused())["id"] == "name"
        await keys.type("Kiki")
        await keys.press("Tab")
        now = await focused()
        assert now["id"] == "room"
        await assert_focus_visible(now)
        await keys.press("Tab")
        now = await focused()
        assert now["tag"] == "BUTTON"
        await assert_focus_visible(now)
        await keys.press("Enter")

        await expect(page.locator(".welcome")).to_have_text("Welcome, Kiki!")
        await expect(kiki.status).to_have_attribute("data-state", "live")
        assert (await focused())["id"] == "text"
        await keys.type("halo dari keyboard")
        await keys.press("Enter")
        await expect(kiki.message("halo dari keyboard")).to_be_visible()
        await keys.type("baris satu")
        await keys.press("Shift+Enter")
        await keys.type("baris dua")
        await keys.press("Enter")
        await expect(kiki.texts.last).to_have_text("baris satu\nbaris dua")
        await expect(page.locator("#text")).to_have_value("")

        for _ in range(12):  # back through the page to the Leave button
            await keys.press("Shift+Tab")
            now = await focused()
            await assert_focus_visible(now)
            if "leave" in now["cls"]:
                break
        assert "leave" in now["cls"], now
        await keys.press("Enter")
        await expect(page.locator("#room")).to_have_value("papan ketik")
        kiki.assert_no_page_errors()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_phone_width_everything_reachable_nothing_overflows(chat_server):
    long_room = "Ruang diskusi tugas akhir kelompok lima belas semester genap"
    long_name = "Bartholomew Wijayakusumaningrat"
    async with chromium() as browser:
        hp = await person(browser, chat_server, "Rina", viewport={"width": 375, "height": 667},
                          is_mobile=True, has_touch=True, locale="id-ID")
        other = await person(browser, chat_server, long_name)
        await hp.join(long_room, live_state=None)
        page = hp.page
        await expect(page.locator(".welcome")).to_have_text("Selamat datang, Rina!")  # Indonesian, by Accept-Language
        await expect(hp.status).to_have_text("Tersambung")
        await other.join(long_room)
        await other.say("x" * 300)
        await other.say("https://example.com/" + "sangat-panjang-" * 20)
        for i in range(12):
            await other.say(f"pesan ke-{i} " + "kata " * 30)
        await expect(hp.message("pesan ke-11")).to_be_visible()
        await expect(page.locator("#user-count")).to_have_text("2")

        await page.locator("#text").tap()
        await page.fill("#text", "dari ponsel")
        await page.locator("button.send").tap()
        await expect(hp.message("dari ponsel")).to_be_visible()

        width = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] == 375, width
        for selector in ("#status", "button.leave", "#text", "button.send", ".users", ".room-name", ".welcome",
                         "#messages .event.message .text >> nth=-1", "#messages .event.message .text >> nth=0"):
            target = page.locator(selector)
            await expect(target).to_be_visible()
            box = await target.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375.5, (selector, box)
        for selector in ("button.leave", "#text", "button.send", "#status"):
            await expect(page.locator(selector)).to_be_in_viewport()
        bubbles = await page.locator("#messages .text").evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).length")
        assert bubbles == 0  # long words wrap inside their bubble

        await page.locator("#scroller").evaluate("el => el.scrollTop = 0")  # reading back: no auto-follow
        await other.say("lihat ke bawah")
        pill = page.locator("#pill")
        await expect(pill).to_have_text("↓ 1 pesan baru")
        await expect(hp.message("lihat ke bawah")).not_to_be_in_viewport()
        await pill.tap()
        await expect(pill).to_be_hidden()
        await expect(hp.message("lihat ke bawah")).to_be_in_viewport()

        await page.locator("#users").evaluate("el => el.scrollLeft = el.scrollWidth")
        await expect(page.locator("#users li", has_text=long_name)).to_be_in_viewport()

        await page.locator("button.leave").tap()
        await expect(page.locator("#room")).to_have_value(long_room)
        await expect(page.locator("button[type=submit]")).to_have_text("Gabung Obrolan")
        hp.assert_no_page_errors()
        other.assert_no_page_errors()
