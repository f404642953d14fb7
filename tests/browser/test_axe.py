"""axe-core finds no accessibility violation, of any impact, on the join page and the room page (issue 12,
item 3): light and dark colour scheme, desktop and 390 px phone, each with an error shown (the join form
refusing a taken name; a message the server refused, in the room's outbox; the connection lost), and
the room page as served without JavaScript.

axe-core is pinned in tests/browser/package.json (scripts/test.sh runs ``npm ci`` there) and runs with
every rule on: no rule is disabled, and every result is reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.harness import TEST_TIMEOUT_S, Person, chromium, person

pytestmark = pytest.mark.browser

AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
AXE_SOURCE = AXE_JS.read_text(encoding="utf-8") if AXE_JS.exists() else ""
SCREENS = {"desktop": {"viewport": {"width": 1280, "height": 800}},
           "phone": {"viewport": {"width": 390, "height": 780}, "is_mobile": True, "has_touch": True}}
# axe's own rule set, as it ships (WCAG 2.0-2.2 A and AA and the best practices); nothing is disabled.
# resultTypes only trims what passed from the answer.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
  }));
}"""


async def axe_violations(page: Page) -> list[dict]:
    """axe's violations on ``page`` as it is now.

    axe.min.js is evaluated through Playwright (the DevTools protocol), not added as a <script>: the
    page's Content-Security-Policy (script-src 'self') refuses the inline script that add_script_tag
    writes, and an evaluation is not subject to it.  So the pages are checked exactly as served, CSP
    included: no bypass_csp, which would change the page under test."""
    return await page.evaluate(f"(async () => {{ {AXE_SOURCE}\n; return await ({RUN_AXE})(); }})()")


async def assert_no_violations(who: Person, what: str) -> None:
    found = await axe_violations(who.page)
    assert found == [], f"axe on {what}:\n{json.dumps(found, indent=1, ensure_ascii=False)}"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("screen", ["desktop", "phone"])
@pytest.mark.gen_test(timeout=TEST_TIMEOUT_S)
async def test_axe_finds_nothing_on_the_join_and_room_pages(chat_server, screen, scheme):
    assert AXE_JS.exists(), "axe-core is missing: cd tests/browser && npm ci (scripts/test.sh does)"
    options = {**SCREENS[screen], "color_scheme": scheme}
    async with chromium() as browser:
        sari = await person(browser, chat_server, "Sari", **options)
        budi = await person(browser, chat_server, "Budi", **options)
        bart = await person(browser, chat_server, "Bartholomew_Wijayakusumaningrat", **options)
        await budi.join("Proyek PBO")
        await bart.join("Proyek PBO")  # enough names that the phone's user strip scrolls sideways
        await budi.say("Pagi! Draft laporan: https://example.com/laporan")

        # The join page with the active rooms and an error: Budi's name is taken in this room.
        await sari.page.goto(chat_server.url + "/")
        await sari.page.fill("#name", "Budi")
        await sari.page.fill("#room", "Proyek PBO")
        await sari.page.click("button[type=submit]")
        await expect(sari.page.locator("#name-error")).to_contain_text("This name is taken")  # at its field
        await assert_no_violations(sari, f"the join page with an error ({screen}, {scheme})")

        # The room: notices, a day, messages of others and one's own, and one the server refused.
        await sari.join("Proyek PBO")
        await expect(sari.message("Draft laporan")).to_be_visible()
        await sari.say("Siap, saya baca.")
        await expect(budi.message("Siap, saya baca.")).to_be_visible()
        await sari.say("bel \u0007 tidak boleh")  # a control character: the server refuses it
        refused = sari.page.locator("#outbox li.failed")
        await expect(refused).to_have_count(1)
        await expect(refused.get_by_role("button")).to_have_count(2)  # Retry, Remove
        if screen == "phone":  # axe's scrollable-region-focusable has something to check
            assert await sari.page.locator(".users").evaluate("el => el.scrollWidth > el.clientWidth")
        await assert_no_violations(sari, f"the room page with a refused message ({screen}, {scheme})")

        # The room as served to a browser without JavaScript.  axe needs scripting in the page (a page
        # with JavaScript off runs no timer, so axe.run never ends): the page's own scripts are
        # refused instead, which leaves the server's markup as it is (the html keeps class="no-js");
        # only the <noscript> "Refresh" link, an ordinary link, is not shown this way.
        nojs = await person(browser, chat_server, "Nojs", **options)
        await nojs.page.route("**/static/js/**", lambda route: route.abort())
        await nojs.join("Proyek PBO", live_state=None)
        await expect(nojs.page.locator("html")).to_have_class("no-js")
        await expect(nojs.message("Siap, saya baca.")).to_be_visible()
        await assert_no_violations(nojs, f"the room page without JavaScript ({screen}, {scheme})")
        # The connection lost: the badge's warning colour, "Try now".
        await chat_server.stopped()
        await expect(sari.page.locator("#retry")).to_be_visible()
        await assert_no_violations(sari, f"the room page reconnecting ({screen}, {scheme})")
        for who in (sari, budi, bart, nojs):
            who.assert_no_page_errors()
