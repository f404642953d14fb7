"""Issue 12, "the chat page, for every person": multi-line messages without JavaScript, Indonesian
everywhere, errors at their fields in words for people, the no-JavaScript page saying what it can
do, and code in messages.  Each test checks what a person sees in a real Chromium.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.harness import TEST_TIMEOUT_S, chromium, person
from tests.chatclient import Api

pytestmark = pytest.mark.browser


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_without_javascript_a_multi_line_message_is_sent_and_shown_with_its_lines(chat_server):
    api = Api(chat_server.url)
    try:
        async with chromium() as browser:
            nojs = await person(browser, chat_server, "Nojs", java_script_enabled=False)
            await nojs.join("baris", live_state=None)
            page = nojs.page
            await page.fill("#text", "baris satu\nbaris dua\n\nbaris empat")
            await page.click("button.send")  # the form submits the textarea's line breaks as CR LF
            await expect(page.locator("#composer-error")).to_be_hidden()
            await expect(nojs.texts).to_have_count(1)
            assert await nojs.texts.first.inner_text() == "baris satu\nbaris dua\n\nbaris empat"
            await expect(page.locator("#text")).to_have_value("")
            nojs.assert_no_page_errors()
        reader = await api.join("Pembaca", "baris")
        events = (await reader.poll(limit=10)).json["events"]
        assert [e["text"] for e in events if e["type"] == "message"] == ["baris satu\nbaris dua\n\nbaris empat"]
    finally:
        api.close()


async def field_error(page, field: str, message: str) -> None:
    """The error is at ``field``: shown under it, tied to it for screen readers, the field focused,
    and no other field marked."""
    box = page.locator(f"#{field}")
    await expect(box).to_be_focused()
    await expect(box).to_have_attribute("aria-invalid", "true")
    described = await box.get_attribute("aria-describedby")
    assert described, f"#{field} is tied to no message"
    await expect(page.locator(f"#{described}")).to_have_text(message)
    assert await page.evaluate(f"""() => {{
      const box = document.getElementById('{field}'), note = document.getElementById('{described}');
      return box.compareDocumentPosition(note) & Node.DOCUMENT_POSITION_FOLLOWING
        && box.parentElement === note.parentElement;
    }}""")  # at the field, after it
    other = "room" if field == "name" else "name"
    assert await page.locator(f"#{other}").get_attribute("aria-invalid") is None
    await expect(page.locator(".join-card [role=alert]")).to_have_count(0)  # not in a box above the form


@pytest.mark.parametrize(("lang", "taken", "slash", "empty_room"), [
    ("en-US", "This name is taken in this room right now. Pick another one.",
     "A room name cannot contain “/”. Pick another one.",
     "Type the name of the room to join, or of a new one to start."),
    ("id-ID", "Nama ini sedang dipakai di ruang ini. Pilih nama lain.",
     "Nama ruang tidak boleh berisi “/”. Pilih nama lain.",
     "Ketik nama ruang yang ingin kamu masuki, atau nama ruang baru untuk memulainya."),
])
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_join_form_errors_sit_at_their_field_in_words_for_people(chat_server, lang, taken, slash, empty_room):
    api = Api(chat_server.url)
    sockets = []
    try:
        sari = await api.join("Sari", "kelas")
        sockets.append(await sari.ws())  # Sari is present in "kelas"
        await sockets[-1].handshake()
        async with chromium() as browser:
            other = await person(browser, chat_server, "Sari", locale=lang)
            page = other.page
            await page.goto(chat_server.url + "/")
            await page.fill("#name", "SARI")
            await page.fill("#room", "kelas")
            await page.click("button[type=submit]")
            await field_error(page, "name", taken)
            await expect(page.locator("#name")).to_have_value("SARI")  # what was typed is kept
            await expect(page.locator("#room")).to_have_value("kelas")

            await page.fill("#name", "Sari Dewi")
            await page.fill("#room", "kelas/2")
            await page.click("button[type=submit]")
            await field_error(page, "room", slash)
            await expect(page.locator("#name")).to_have_value("Sari Dewi")

            await page.fill("#room", " ")
            await page.click("button[type=submit]")
            await field_error(page, "room", empty_room)

            await page.fill("#room", "kelas 2")  # corrected: in
            await page.click("button[type=submit]")
            await expect(page.locator(".welcome")).to_contain_text("Sari Dewi")
            other.assert_no_page_errors()
    finally:
        for sock in sockets:
            sock.close()
        api.close()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_a_failed_send_says_why_in_indonesian(chat_server):
    async with chromium() as browser:
        sari = await person(browser, chat_server, "Sari", locale="id-ID")
        await sari.join("kelas")
        await sari.say("halo\u0007semua")  # a bell: a control character, refused by the server
        bubble = sari.page.locator("#outbox .failed .pending-state")
        await expect(bubble).to_contain_text(
            "Tidak terkirim: Pesan ini tidak dapat dikirim apa adanya: pesannya kosong, terlalu panjang, "
            "atau berisi karakter yang tidak dapat dikirim.")
        await expect(bubble).not_to_contain_text("control")
        sari.assert_no_page_errors()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_the_keyboard_focus_stays_on_a_failed_messages_retry_while_the_page_relabels(chat_server):
    """A keyboard user on a refused message's "Retry" keeps the focus there while the page goes on:
    the connection lost, the reconnect countdown ticking (each relabels the outbox: a failed
    bubble's buttons must stay the same elements, or the focus falls to the page)."""
    async with chromium() as browser:
        sari = await person(browser, chat_server, "Sari")
        await sari.join("fokus")
        await sari.say("halo\u0007semua")  # a bell: refused by the server
        retry = sari.page.locator("#outbox li.failed").get_by_role("button", name="Retry")
        await expect(retry).to_be_visible()
        await retry.focus()
        await expect(retry).to_be_focused()
        badge = sari.page.locator("#status")
        await chat_server.stopped()
        await expect(sari.page.locator("#retry")).to_be_visible()  # reconnecting, counting down
        first = await badge.text_content()
        await expect(badge).not_to_have_text(first or "")  # a tick of the countdown (or the next state)
        await expect(retry).to_be_focused()


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_times_on_the_no_javascript_page_are_in_the_readers_zone_remembered_from_the_live_page(chat_server):
    """Jakarta is UTC+7 all year (WIB).  A browser that once showed the live page (which notes its
    zone) shows the no-JavaScript page's times in that zone; one that never did is told "UTC"."""
    api = Api(chat_server.url)
    try:
        budi = await api.join("Budi", "zona")
        sent = await budi.post("jam berapa di sana?")
        assert sent.status == 201
        ts = sent.json["ts"]
        hour, minute = int(ts[11:13]), ts[14:16]
        jakarta = f"{(hour + 7) % 24:02d}:{minute} WIB"
        async with chromium() as browser:
            sari = await person(browser, chat_server, "Sari", timezone_id="Asia/Jakarta", locale="id-ID")
            await sari.join("zona")
            await expect(sari.message("jam berapa di sana?")).to_be_visible()
            cookies = await sari.page.context.cookies()
            assert any(c["name"] == "tz" and c["value"] == "Asia/Jakarta" for c in cookies), cookies

            # The same browser with JavaScript off (its cookies: the session and the zone).
            plain = await person(browser, chat_server, "Sari", java_script_enabled=False,
                                 timezone_id="Asia/Jakarta", locale="id-ID")
            await plain.page.context.add_cookies(cookies)
            await plain.page.goto(chat_server.url + "/rooms/zona")
            message = plain.page.locator("#messages .event.message").filter(has_text="jam berapa di sana?")
            await expect(message.locator("time")).to_have_text(jakarta)
            await expect(message.locator("time")).to_have_attribute("datetime", ts)

            # Never on the live page (no zone known): the time says its zone.
            other = await person(browser, chat_server, "Tono", java_script_enabled=False)
            await other.join("zona", live_state=None)
            message = other.page.locator("#messages .event.message").filter(has_text="jam berapa di sana?")
            await expect(message.locator("time")).to_have_text(f"{hour:02d}:{minute} UTC")

            # A zone the server does not know, or a path, is ignored.
            for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "Asia/Jakarta\u0000"):
                await other.page.context.add_cookies([{"name": "tz", "value": bad.replace("\u0000", "%00"),
                                                       "url": chat_server.url}])
                await other.page.reload()
                await expect(message.locator("time")).to_have_text(f"{hour:02d}:{minute} UTC")
            for who in (sari, plain, other):
                who.assert_no_page_errors()
    finally:
        api.close()


@pytest.mark.parametrize(("lang", "note", "empty", "left", "again"), [
    ("en-US", "This page does not update by itself: press Refresh to see new messages.",
     "The message is empty. Write something before you send it.", "You left Kelas A.", "Join again"),
    ("id-ID", "Halaman ini tidak diperbarui sendiri: tekan Muat ulang untuk melihat pesan baru.",
     "Pesannya kosong. Tulis sesuatu sebelum mengirim.", "Kamu sudah keluar dari Kelas A.", "Gabung lagi"),
])
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_without_javascript_the_page_says_how_to_see_news_where_a_blank_message_went_wrong_and_that_you_left(
        chat_server, lang, note, empty, left, again):
    async with chromium() as browser:
        nojs = await person(browser, chat_server, "Nojs", java_script_enabled=False, locale=lang)
        await nojs.join("Kelas A", live_state=None)
        page = nojs.page
        # One line says how to see new messages (get_by_text does not look inside <noscript>).
        await expect(page.locator("#nojs-note")).to_have_text(note)
        await expect(page.locator("#nojs-note")).to_be_visible()

        # A blank message: the room again, the message at the box, the box focused, the rest kept.
        await page.fill("#text", "   \n  ")
        await page.click("button.send")
        box = page.locator("#text")
        await expect(box).to_be_focused()
        await expect(box).to_have_attribute("aria-invalid", "true")
        described = (await box.get_attribute("aria-describedby") or "").split()
        assert "composer-error" in described, described
        await expect(page.locator("#composer-error")).to_have_text(empty)
        await expect(page.locator(".welcome")).to_contain_text("Nojs")
        await expect(page.locator("#nojs-note")).to_be_visible()
        assert "text must not be empty" not in await page.content()

        # Corrected, it goes, and the box is no longer marked.
        await page.fill("#text", "halo")
        await page.click("button.send")
        await expect(nojs.message("halo")).to_be_visible()
        await expect(box).not_to_have_attribute("aria-invalid", "true")
        await expect(page.locator("#composer-error")).to_be_hidden()

        # Leave: a page that says so, with a way back in.
        await page.click("button.leave")
        await expect(page.locator("[role=status]")).to_contain_text(left)
        link = page.get_by_role("link", name=again)
        await expect(link).to_be_visible()
        await link.click()
        await expect(page.locator("#room")).to_have_value("Kelas A")
        await page.click("button[type=submit]")
        await expect(page.locator(".welcome")).to_contain_text("Nojs")
        nojs.assert_no_page_errors()


# The contrast of an element's text against what is behind it (backgrounds composited up the tree).
CONTRAST_JS = """el => {
  const rgba = s => {
    const m = s.match(/[\\d.]+/g).map(Number);
    return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
  };
  const layers = [];
  for (let n = el; n; n = n.parentElement) {
    const bg = rgba(getComputedStyle(n).backgroundColor);
    if (bg[3] > 0) { layers.push(bg); }
    if (bg[3] >= 1) { break; }
  }
  let under = [255, 255, 255];
  for (const [r, g, b, a] of layers.reverse()) {
    under = [r * a + under[0] * (1 - a), g * a + under[1] * (1 - a), b * a + under[2] * (1 - a)];
  }
  const lum = c => {
    const v = c.slice(0, 3).map(x => x / 255).map(x => x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  };
  const [hi, lo] = [lum(rgba(getComputedStyle(el).color)), lum(under)].sort((a, b) => b - a);
  return (hi + 0.05) / (lo + 0.05);
}"""
LONG_LINE = "    return " + " + ".join(f"nilai_{i}" for i in range(30))
CODE_MESSAGE = f"pakai `print(x)` lalu\n```\ndef f():\n{LONG_LINE}\n```\nselesai `<b>` https://example.com"


async def check_code_is_shown(who, mine: bool) -> None:
    page = who.page
    message = page.locator("#messages .event.message").filter(has_text="selesai")
    await expect(message).to_have_count(1)
    inline = message.locator(".text > code")
    await expect(inline).to_have_text(["print(x)", "<b>"])
    block = message.locator(".text > pre")
    await expect(block).to_have_count(1)
    await expect(block).to_have_attribute("tabindex", "0")
    await expect(block.locator("code")).to_have_text(f"def f():\n{LONG_LINE}")  # lines kept
    assert await block.inner_text() == f"def f():\n{LONG_LINE}"
    await expect(message.locator(".text b, .text pre a, .text code a")).to_have_count(0)  # no HTML, no link in code
    await expect(message.locator(".text > a")).to_have_attribute("href", "https://example.com")
    assert await message.locator(".text").evaluate("t => t.textContent.includes('`')") is False
    # The long line scrolls inside the block; the bubble stays inside the timeline, the page does not scroll sideways.
    sizes = await block.evaluate("""pre => {
      const bubble = pre.parentElement.getBoundingClientRect(), box = pre.getBoundingClientRect();
      const list = document.getElementById('messages').getBoundingClientRect();
      const root = document.documentElement;
      return {scrolls: pre.scrollWidth > pre.clientWidth,
              inside: box.right <= bubble.right + 0.5 && bubble.right <= list.right + 0.5
                && bubble.left >= list.left - 0.5,
              page: root.scrollWidth <= root.clientWidth};
    }""")
    assert sizes == {"scrolls": True, "inside": True, "page": True}, (who.name, mine, sizes)
    # Keyboard: Tab reaches the block, and the arrow keys scroll it.
    await block.focus()
    await expect(block).to_be_focused()
    # (Scrolling may be animated: press again until it has moved, a bounded number of times;
    # wait_for_function cannot run in a page with JavaScript off.)
    for _ in range(20):
        await page.keyboard.press("ArrowRight")
        if await block.evaluate("pre => pre.scrollLeft") > 0:
            break
    assert await block.evaluate("pre => pre.scrollLeft") > 0, "the arrow keys do not scroll the block"
    for part in (inline.first, block.locator("code")):
        ratio = await part.evaluate(CONTRAST_JS)
        assert ratio >= 4.5, (who.name, mine, ratio)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_code_in_a_message_shows_as_code_on_the_live_and_the_no_javascript_page(chat_server, scheme):
    async with chromium() as browser:
        ani = await person(browser, chat_server, "Ani", color_scheme=scheme, viewport={"width": 390, "height": 800})
        nojs = await person(browser, chat_server, "Nojs", java_script_enabled=False, color_scheme=scheme)
        await ani.join("kode")
        await nojs.join("kode", live_state=None)
        await ani.page.fill("#text", CODE_MESSAGE)
        await ani.page.press("#text", "Enter")
        await check_code_is_shown(ani, mine=True)  # live, rendered by render.js
        await nojs.page.reload()
        await check_code_is_shown(nojs, mine=False)  # rendered by the server
        await ani.page.reload()  # the server's page, taken over by the client
        await check_code_is_shown(ani, mine=True)
        for who in (ani, nojs):
            who.assert_no_page_errors()
