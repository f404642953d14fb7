"""The pages under their Content-Security-Policy, in a real Chromium: everything still works (join,
live chat over WebSocket, Server-Sent Events and long-poll, older messages, leave) and the browser
reports no violation; and no other site can frame a page (clickjacking the Leave and Send forms)."""

from __future__ import annotations

from typing import Any

import pytest
import tornado.web
from playwright.async_api import BrowserContext, ConsoleMessage, expect

from tests.browser.harness import TEST_TIMEOUT_S, Person, chromium, person
from tests.chatclient import Api
from tests.servers import free_port

pytestmark = pytest.mark.browser

NO_WEBSOCKET = "delete window.WebSocket; window.WebSocket = undefined;"
NO_EVENTSOURCE = "delete window.EventSource; window.EventSource = undefined;"
# Runs before the page's own scripts in every document (Playwright's init scripts are not subject
# to the page's CSP); the binding carries each report out of the page as it happens.
REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', function (e) {
  window.cspViolation(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile);
});
"""


async def watched(context: BrowserContext, who: Person) -> list[str]:
    """Every CSP violation in ``who``'s pages: the DOM event and Chromium's console message."""
    violations: list[str] = []

    def binding(source: Any, report: str) -> None:
        violations.append(report)

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(f"console: {message.text}")

    await context.expose_binding("cspViolation", binding)
    await context.add_init_script(REPORT_VIOLATIONS)
    who.page.on("console", console)
    return violations


@pytest.mark.server(presence_grace=60.0)  # Citra (the API user) stays listed however slow the machine
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_the_pages_work_under_their_policy_with_no_violation(chat_server):
    api = Api(chat_server.url)
    try:  # some history, so that "Older messages" has something to load
        citra = await api.join("Citra", "Proyek PBO")
        for i in range(60):
            assert (await citra.post(f"lama {i}")).status == 201
    finally:
        api.close()
    async with chromium() as browser:
        ani = await person(browser, chat_server, "Ani")
        ani_violations = await watched(ani.page.context, ani)
        budi = await person(browser, chat_server, "Budi")
        budi_violations = await watched(budi.page.context, budi)
        await budi.page.context.add_init_script(NO_WEBSOCKET)
        await budi.page.context.add_init_script(NO_EVENTSOURCE)
        dewi = await person(browser, chat_server, "Dewi")
        dewi_violations = await watched(dewi.page.context, dewi)
        await dewi.page.context.add_init_script(NO_WEBSOCKET)  # EventSource, under connect-src

        answer = await ani.page.goto(chat_server.url + "/")
        assert answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        await ani.join("Proyek PBO")  # the join form posts (form-action), the room page goes live (WebSocket)
        await budi.join("Proyek PBO", live_state="fallback")  # no WebSocket: long-poll over XHR
        await ani.say("halo dari WebSocket")
        await expect(budi.message("halo dari WebSocket")).to_be_visible()
        await budi.say("halo dari long-poll")
        await expect(ani.message("halo dari long-poll")).to_be_visible()
        await dewi.join("Proyek PBO", live_state="compat")  # no WebSocket: Server-Sent Events
        await dewi.say("halo dari SSE")
        await expect(ani.message("halo dari SSE")).to_be_visible()
        await expect(dewi.message("halo dari long-poll")).to_be_visible()
        await expect(ani.page.locator("#user-count")).to_have_text("4")  # the user list, rendered by script

        await ani.page.click("#older")  # loaded in place by the script
        await expect(ani.message("lama 0")).to_be_visible()

        await budi.page.click("button.leave")  # a form post, redirected to the join page
        await expect(budi.page.locator("#room")).to_have_value("Proyek PBO")
        await expect(ani.page.locator("#messages")).to_contain_text("Budi left")
        await ani.page.reload()  # the server-rendered page again, then live again
        await expect(ani.status).to_have_attribute("data-state", "live")

        for who in (ani, budi, dewi):
            who.assert_no_page_errors()
        assert ani_violations == budi_violations == dewi_violations == [], (
            ani_violations, budi_violations, dewi_violations)


class OtherSite(tornado.web.RequestHandler):
    """Another site (another origin: another port) that puts this server's pages in frames."""

    def initialize(self, target: str) -> None:
        self.target = target

    def get(self) -> None:
        # The join page, a room page, and, to show that a frame of this server does load when
        # nothing forbids it, a static file (sent with no policy).
        self.write(f'<iframe name="join" src="{self.target}/"></iframe>'
                   f'<iframe name="room" src="{self.target}/rooms/Proyek%20PBO"></iframe>'
                   f'<iframe name="file" src="{self.target}/static/favicon.svg"></iframe>')


@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_no_other_site_can_frame_a_page(chat_server):
    port = free_port()
    other_site = tornado.web.Application([(r"/", OtherSite, {"target": chat_server.url})]).listen(port, "127.0.0.1")
    try:
        async with chromium() as browser:
            page = await browser.new_page()
            refused: list[str] = []
            page.on("console", lambda message: refused.append(message.text))
            await page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            frames = {frame.name: frame for frame in page.frames if frame.name}
            assert frames["file"].url == chat_server.url + "/static/favicon.svg"
            for name in ("join", "room"):
                # refused by Chromium (frame-ancestors 'none'): its error page, none of Obrolan's forms
                assert frames[name].url.startswith("chrome-error://"), (name, frames[name].url)
                await expect(page.frame_locator(f"iframe[name={name}]").locator("form")).to_have_count(0)
            assert sum("frame-ancestors 'none'" in text for text in refused) == 2, refused
    finally:
        other_site.stop()
