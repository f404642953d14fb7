"""The page's three transports, as a person sees them: WebSocket, Server-Sent Events, long-poll.

A browser without WebSocket streams over SSE, one without EventSource either long-polls, and
a page that fell back climbs back to WebSocket once it works, without losing or doubling a
message.  Typing notices go out on every transport.  The missing or refused browser features
are made so by init scripts that run before the page's own scripts; the server is the real one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.browser.harness import TEST_TIMEOUT_S, ChatServer, Person, chromium, person
from tests.chatclient import Api, Socket, User

pytestmark = pytest.mark.browser

NO_WEBSOCKET = "delete window.WebSocket; window.WebSocket = undefined;"
NO_EVENTSOURCE = "delete window.EventSource; window.EventSource = undefined;"
# WebSocket refused (as by a proxy) until the test sets window.wsWorks: the constructor throws,
# as browsers do when a connection is not allowed; after that, the browser's own WebSocket.
REFUSED_WEBSOCKET = """
(function () {
  var Real = window.WebSocket;
  window.wsWorks = false;
  window.WebSocket = function (url, protocols) {
    if (!window.wsWorks) { throw new Error('WebSocket refused'); }
    return protocols === undefined ? new Real(url) : new Real(url, protocols);
  };
}());
"""
async def person_on(browser: Browser, server: ChatServer, name: str, state: str, **options: Any) -> Person:
    """A person whose browser has what the badge state ``state`` needs and no more: "live"
    (WebSocket), "compat" (no WebSocket: SSE) or "fallback" (neither: long-poll)."""
    who = await person(browser, server, name, **options)
    if state != "live":
        await who.page.context.add_init_script(NO_WEBSOCKET)
    if state == "fallback":
        await who.page.context.add_init_script(NO_EVENTSOURCE)
    return who


@contextlib.asynccontextmanager
async def observer(server: ChatServer, name: str, room: str) -> AsyncIterator[tuple[User, Socket]]:
    """An API user in ``room`` with an open WebSocket (after its handshake), closed at the end."""
    api = Api(server.url)
    try:
        user = await api.join(name, room)
        ws = await user.ws()
        await ws.handshake()
        try:
            yield user, ws
        finally:
            ws.close()
    finally:
        api.close()


CLIMB_TIMEOUT_MS = 45_000  # the climb's backoff may have grown to 30 s by the time WebSocket works
COMPAT = "Live (compatibility mode)"
BASIC = "Live (basic mode)"


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_without_websocket_the_page_streams_over_sse_both_ways_in_english_and_indonesian(chat_server):
    async with chromium() as browser:
        lia = await person_on(browser, chat_server, "Lia", "compat")
        sari = await person_on(browser, chat_server, "Sari", "compat", locale="id-ID")
        wira = await person(browser, chat_server, "Wira")

        await lia.join("lobby", live_state="compat")
        await expect(lia.status).to_have_text(COMPAT)
        await sari.join("lobby", live_state="compat")
        await expect(sari.status).to_have_text("Tersambung (mode kompatibel)")
        await wira.join("lobby")
        await expect(wira.status).to_have_text("Live")
        await expect(lia.page.locator("#user-count")).to_have_text("3")

        await lia.say("halo lewat SSE")
        await expect(wira.message("halo lewat SSE")).to_be_visible()
        await wira.say("halo juga, Lia")
        await expect(lia.message("halo juga, Lia")).to_be_visible()
        for who in (lia, sari, wira):
            await expect(who.texts).to_have_text(["halo lewat SSE", "halo juga, Lia"])
        await expect(lia.page.locator("#outbox li")).to_have_count(0)
        for who in (lia, sari, wira):
            who.assert_no_page_errors()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_without_websocket_and_eventsource_the_page_long_polls(chat_server):
    async with chromium() as browser:
        tono = await person_on(browser, chat_server, "Tono", "fallback")
        wira = await person(browser, chat_server, "Wira")

        await tono.join("lobby", live_state="fallback")
        await expect(tono.status).to_have_text(BASIC)
        await wira.join("lobby")
        await expect(tono.page.locator("#user-count")).to_have_text("2")
        await tono.say("dari long-poll")
        await expect(wira.message("dari long-poll")).to_be_visible()
        await wira.say("diterima")
        await expect(tono.message("diterima")).to_be_visible()
        await expect(tono.texts).to_have_text(["dari long-poll", "diterima"])
        tono.assert_no_page_errors()
        wira.assert_no_page_errors()


@pytest.mark.parametrize("has_eventsource", [True, False], ids=["from-sse", "from-long-poll"])
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_a_page_that_fell_back_climbs_back_to_websocket_without_gap_or_duplicate(chat_server, has_eventsource):
    fell_to, badge = ("compat", COMPAT) if has_eventsource else ("fallback", BASIC)
    api = Api(chat_server.url)
    try:
        async with chromium() as browser:
            ani = await person(browser, chat_server, "Ani")
            await ani.page.context.add_init_script(REFUSED_WEBSOCKET)
            if not has_eventsource:
                await ani.page.context.add_init_script(NO_EVENTSOURCE)
            await ani.join("lobby", live_state=fell_to)  # WebSocket refused: one rung down
            await expect(ani.status).to_have_text(badge)

            budi = await api.join("Budi", "lobby")
            expected = []
            for i in range(3):
                assert (await budi.post(f"sebelum {i}")).status == 201
                expected.append(f"sebelum {i}")
            await expect(ani.texts).to_have_text(expected)
            await ani.say("ani sebelum naik")
            expected.append("ani sebelum naik")
            await expect(ani.texts).to_have_text(expected)

            await ani.page.evaluate("window.wsWorks = true")
            # Messages keep coming while the page moves up: each must show exactly once.
            for i in range(10):
                assert (await budi.post(f"selama {i}")).status == 201
                expected.append(f"selama {i}")
            await expect(ani.status).to_have_attribute("data-state", "live", timeout=CLIMB_TIMEOUT_MS)
            await expect(ani.status).to_have_text("Live")
            for i in range(3):
                assert (await budi.post(f"sesudah {i}")).status == 201
                expected.append(f"sesudah {i}")
            await ani.say("ani di WebSocket")
            expected.append("ani di WebSocket")
            await expect(ani.texts).to_have_text(expected)
            await expect(ani.page.locator("#outbox li")).to_have_count(0)
            # What was shown live is what the server stored, in the same order.  (The reload
            # runs the init script again: WebSocket is refused again, so one rung down.)
            await ani.page.reload()
            await expect(ani.status).to_have_attribute("data-state", fell_to)
            await expect(ani.texts).to_have_text(expected)
            ani.assert_no_page_errors()
    finally:
        api.close()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_typing_on_sse_and_long_poll_pages_shows_on_other_pages(chat_server):
    async with chromium() as browser:
        lia = await person_on(browser, chat_server, "Lia", "compat")
        tono = await person_on(browser, chat_server, "Tono", "fallback")
        wira = await person(browser, chat_server, "Wira")  # WebSocket
        await lia.join("lobby", live_state="compat")
        await tono.join("lobby", live_state="fallback")
        await wira.join("lobby")

        await lia.page.fill("#text", "sedang menulis")  # input events, as typing makes
        await expect(wira.page.locator("#typing")).to_have_text("Lia is typing…")

        # Lia's notice may still show beside the next ones (it lasts a few seconds): "contains".
        await tono.page.type("#text", "juga")
        await expect(wira.page.locator("#typing")).to_contain_text("Tono")
        await expect(lia.page.locator("#typing")).to_contain_text("Tono")  # an SSE reader sees it

        await wira.page.type("#text", "ya")
        await expect(lia.page.locator("#typing")).to_contain_text("Wira")
        await expect(tono.page.locator("#typing")).to_contain_text("Wira")  # a long-poll reader sees it
        # Wira's message ends Wira's typing on the long-poll page too.
        await wira.page.press("#text", "Enter")
        await expect(tono.message("ya")).to_be_visible()
        await expect(tono.page.locator("#typing")).not_to_contain_text("Wira")
        for who in (lia, tono, wira):
            who.assert_no_page_errors()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_typing_again_right_after_a_send_is_announced_at_once(chat_server):
    """After Enter, the next keystroke says "typing" again: the 2 s pause between notices starts
    anew with each message (before, the notice after a send was dropped for up to 2 s)."""
    async with observer(chat_server, "Ina", "ketik") as (_ina, ws), chromium() as browser:
        wira = await person(browser, chat_server, "Wira")
        await wira.join("ketik")
        await wira.page.type("#text", "satu")
        await wira.page.press("#text", "Enter")
        await wira.page.type("#text", "dua")
        await wira.page.press("#text", "Enter")
        frames: list[tuple[str, str | None]] = []
        while ("message", "dua") not in frames:
            frame = await ws.recv()
            assert frame is not None, "the server closed the observer's WebSocket"
            if frame["type"] in ("message", "typing"):
                frames.append((frame["type"], frame.get("text")))
        assert frames == [("typing", None), ("message", "satu"), ("typing", None), ("message", "dua")]
        wira.assert_no_page_errors()


@pytest.mark.server(store="sqlite")
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_sse_and_long_poll_pages_reconnect_after_a_restart_and_lose_nothing(chat_server):
    api = Api(chat_server.url)
    try:
        citra = await api.join("Citra", "tahan")  # a bearer token survives the restart
        async with chromium() as browser:
            lia = await person_on(browser, chat_server, "Lia", "compat")
            tono = await person_on(browser, chat_server, "Tono", "fallback")
            await lia.join("tahan", live_state="compat")
            await tono.join("tahan", live_state="fallback")
            await lia.say("sebelum restart")
            await expect(tono.message("sebelum restart")).to_be_visible()

            await chat_server.stopped()
            for who in (lia, tono):
                await expect(who.status).to_have_attribute("data-state", "reconnecting")
            await lia.say("ditulis saat server mati")
            await expect(lia.page.locator("#outbox li")).to_contain_text("Waiting for the connection")

            await chat_server.started()
            assert (await citra.post("dikirim saat kalian pergi")).status == 201
            # Each page comes back on its own transport (a stream that broke after its hello is
            # not a blocked one), and nothing is missing or doubled.
            await expect(lia.status).to_have_attribute("data-state", "compat", timeout=CLIMB_TIMEOUT_MS)
            await expect(tono.status).to_have_attribute("data-state", "fallback", timeout=CLIMB_TIMEOUT_MS)
            await expect(lia.page.locator("#outbox li")).to_have_count(0)
            history = (await citra.poll(limit=200)).json["events"]
            stored = [e["text"] for e in history if e["type"] == "message"]
            assert sorted(stored) == sorted(["sebelum restart", "ditulis saat server mati",
                                             "dikirim saat kalian pergi"])
            for who in (lia, tono):
                await expect(who.texts).to_have_text(stored)
                who.assert_no_page_errors()
    finally:
        api.close()


@pytest.mark.parametrize("transport", ["live", "compat", "fallback"])
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_leave_in_another_tab_stops_this_tab_and_sends_nothing_without_a_new_join(chat_server, transport):
    """Leave in one tab: the other tab of the session learns it over its live connection (a WebSocket
    close, the stream's last item, a long-poll's 410), says so, offers to join again and sends
    nothing (a form post now would join the room again behind the person's back)."""
    async with observer(chat_server, "Ina", "kelas") as (ina, ws), chromium() as browser:
        sari = await person_on(browser, chat_server, "Sari", transport)
        await sari.join("kelas", live_state=transport)
        other_tab = await sari.page.context.new_page()
        await other_tab.goto(sari.page.url)
        await sari.page.fill("#text", "belum terkirim")

        await other_tab.click("button.leave")
        await ws.recv_until(lambda f: f.get("type") == "leave" and f.get("user") == "Sari")
        note = sari.page.locator("#messages li.system").last
        await expect(note).to_contain_text("You left this room (here or in another tab).")
        await expect(note.get_by_role("link", name="Join again")).to_have_attribute("href", "/?room=kelas")
        await expect(sari.page.locator("#text")).to_be_disabled()
        await expect(sari.page.locator("#send")).to_be_disabled()
        await expect(sari.page.locator("#text")).to_have_value("belum terkirim")  # kept, not sent
        assert await ina.users() == ["Ina"]  # not joined again by the old tab
        sari.assert_no_page_errors()
