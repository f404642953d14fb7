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
