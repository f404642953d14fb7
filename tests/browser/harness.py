"""Harness for the real-browser tests: the real server as a subprocess, Debian's Chromium via Playwright.

Each test is a pytest-tornado ``gen_test`` coroutine that launches its own Chromium:
Playwright's async objects belong to one event loop, and pytest-tornado gives each
test a fresh one.  The server runs as ``python chat.py`` so a test can stop and
start it again (``await chat_server.stopped()``, ``await chat_server.started()``).
Options per test: ``@pytest.mark.server(store="sqlite", presence_grace=5.0)``.

Chromium comes from the system (``apt-get install chromium``, done by scripts/test.sh);
``playwright install`` is never needed.

The client's pure logic is tested without a server: ``client_page(browser, "timeline.js", ...)``
is a blank page with those files of static/js loaded, for ``page.evaluate``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.servers import ChatProcess

JS_DIR = Path(__file__).resolve().parents[2] / "static" / "js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXPECT_TIMEOUT_MS = 10_000
TEST_TIMEOUT_S = 60  # for gen_test(timeout=...)

expect.set_options(timeout=EXPECT_TIMEOUT_MS)


class ChatServer(ChatProcess):
    """``python chat.py`` for one browser test, its options from ``@pytest.mark.server(...)``."""

    def __init__(self, data_dir: Path, store: str = "memory", presence_grace: float = 5.0, **options: Any) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        options = {"store": store, "presence_grace": presence_grace, "rate_limit": 0,
                   "cookie_secret": "browser-test-secret", **options}
        super().__init__(data_dir, *(f"--{k.replace('_', '-')}={v}" for k, v in options.items()),
                         log_path=data_dir.parent / "server.log")


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Chromium is missing: apt-get install chromium (scripts/test.sh does)")
    return path


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class ClientPage:
    """A blank page (no server) with some of static/js loaded: see ``client_page``."""

    page: Page
    errors: list[str] = field(default_factory=list)

    async def run(self, script: str, arg: Any = None) -> Any:
        """``page.evaluate(script, arg)``; fails if anything threw in the page meanwhile."""
        result = await self.page.evaluate(script, arg)
        assert self.errors == [], f"the page threw: {self.errors}"
        return result


async def client_page(browser: Browser, *files: str) -> ClientPage:
    """A blank page with ``files`` from static/js loaded in order, as the room page loads them."""
    page = await browser.new_page()
    client = ClientPage(page)
    page.on("pageerror", lambda exc: client.errors.append(str(exc)))
    await page.goto("about:blank")
    for name in files:
        await page.add_script_tag(path=JS_DIR / name)
    assert await client.run("typeof window.Obrolan") == "object"
    return client


@dataclass
class Person:
    """One person at one browser context (their own cookies), with what went wrong in the page."""

    name: str
    page: Page
    server: ChatServer
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @property
    def status(self) -> Locator:
        return self.page.locator("#status")

    @property
    def texts(self) -> Locator:
        """Message texts in the timeline (not the outbox)."""
        return self.page.locator("#messages .event.message .text")

    def message(self, text: str) -> Locator:
        return self.texts.filter(has_text=text)

    async def join(self, room: str, *, live_state: str | None = "live") -> None:
        await self.page.goto(self.server.url + "/")
        await self.page.fill("#name", self.name)
        await self.page.fill("#room", room)
        await self.page.click("button[type=submit]")
        await expect(self.page.locator(".welcome")).to_contain_text(self.name)  # in any language
        if live_state is not None:
            await expect(self.status).to_have_attribute("data-state", live_state)

    async def say(self, text: str) -> None:
        await self.page.fill("#text", text)
        await self.page.press("#text", "Enter")

    def assert_no_page_errors(self) -> None:
        assert self.errors == [], f"{self.name}'s page threw: {self.errors}"
        assert self.dialogs == [], f"{self.name}'s page opened dialogs: {self.dialogs}"


async def person(browser: Browser, server: ChatServer, name: str, **context_options: Any) -> Person:
    context = await browser.new_context(**context_options)
    page = await context.new_page()
    who = Person(name, page, server)
    page.on("pageerror", lambda exc: who.errors.append(str(exc)))

    async def on_dialog(dialog: Any) -> None:
        who.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    return who
