"""Make the README's screenshots from a real server and Debian's headless Chromium.

    python scripts/screenshots.py [--out docs/screenshots]

Writes join.png (the join page, desktop), room-desktop.png (a busy room),
room-phone.png (the same room at 390 px, dark colour scheme) and fallback.png
(a browser without WebSocket or EventSource, on long-poll: "Live (basic mode)").  The server runs with
the memory store in a temporary folder and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.async_api import expect  # noqa: E402

from tests.browser.harness import ChatServer, Person, chromium, person  # noqa: E402

ROOM = "Proyek PBO"
DESKTOP = {"width": 1200, "height": 760}
PHONE = {"width": 390, "height": 780}
CONVERSATION = [  # (who, text); "Dewi" is the reader whose page is photographed
    ("Ani", "Pagi semua! Draft laporan sudah saya unggah: https://example.com/proyek-pbo/laporan"),
    ("Budi", "Mantap, saya cek sekarang."),
    ("Budi", "Di class diagram relasi Order ↔ Payment masih kurang, ya"),
    ("Citra", "Betul, nanti sore saya tambahkan.\nRapat jam 15.00 jadi?"),
    ("Dewi", "Jadi. Saya bawa slide demo dan hasil uji login."),
    ("Ani", "Sip! Jangan lupa test case untuk password yang salah: `login(\"dewi\", \"salah\")` harus gagal"),
    ("Dewi", "Siap, sudah ada tiga."),
    # a long unbroken URL in the reader's own bubble (and in others' on the phone): it wraps inside
    ("Dewi", "Slide: https://example.com/proyek-pbo/slide-demo-hasil-uji-login-versi-akhir-revisi-ketiga.pdf"),
]


async def make(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="obrolan-shots-") as tmp:
        server = ChatServer(Path(tmp) / "data", presence_grace=30.0)
        server.start()
        try:
            async with chromium() as browser:
                await shoot(browser, server, out)
        finally:
            server.stop()


async def shoot(browser, server: ChatServer, out: Path) -> None:
    people: dict[str, Person] = {}
    for name in ("Ani", "Budi", "Citra"):
        people[name] = await person(browser, server, name, viewport=DESKTOP)
        await people[name].join(ROOM)
    dewi = await person(browser, server, "Dewi", viewport=DESKTOP)
    await dewi.join(ROOM)
    people["Dewi"] = dewi
    for who, text in CONVERSATION:
        await people[who].say(text)
        # (code shows without its backticks)
        await expect(dewi.message(text.split("\n")[0].split("`")[0])).to_be_visible()
    lobby = await person(browser, server, "Eko", viewport=DESKTOP)
    await lobby.join("lobby")
    await lobby.say("Ada yang tahu cara deploy ke server kampus?")

    # A busy room on a desktop, with someone typing.
    # Typing notices go out at most every 2 s: type for a little longer than that.
    await people["Budi"].page.locator("#text").press_sequentially("Oke, sampai nanti", delay=180)
    await expect(dewi.page.locator("#typing")).to_have_text("Budi is typing…")
    await dewi.page.evaluate("document.activeElement.blur()")
    await dewi.page.screenshot(path=str(out / "room-desktop.png"))

    # The same room on a phone, in the dark colour scheme.
    phone = await person(browser, server, "Fajar", viewport=PHONE, is_mobile=True, has_touch=True,
                         device_scale_factor=2, color_scheme="dark")
    await phone.join(ROOM)
    await people["Citra"].say("Halo Fajar! Kita bahas laporan PBO.")
    await expect(phone.message("Halo Fajar!")).to_be_visible()
    await phone.page.screenshot(path=str(out / "room-phone.png"))

    # The join page, with the active rooms.
    visitor = await person(browser, server, "Gita", viewport={"width": 1000, "height": 700})
    await visitor.page.goto(server.url + "/")
    await expect(visitor.page.locator(".active-rooms")).to_contain_text(ROOM)
    await visitor.page.fill("#name", "Gita")
    await visitor.page.fill("#room", ROOM)
    await visitor.page.evaluate("document.activeElement.blur()")
    await visitor.page.screenshot(path=str(out / "join.png"))

    # A browser without WebSocket: long-poll, by itself.
    legacy = await person(browser, server, "Hadi", viewport={"width": 1000, "height": 560})
    await legacy.page.context.add_init_script("delete window.WebSocket; window.WebSocket = undefined;"
                                              "delete window.EventSource; window.EventSource = undefined;")
    await legacy.join(ROOM, live_state="fallback")
    await legacy.say("Saya pakai browser lama, tetap bisa ikut :)")
    await expect(dewi.message("Saya pakai browser lama")).to_be_visible()
    await expect(legacy.message("Saya pakai browser lama")).to_be_visible()
    await legacy.page.evaluate("document.activeElement.blur()")
    await legacy.page.screenshot(path=str(out / "fallback.png"))

    for who in [*people.values(), phone, visitor, legacy, lobby]:
        who.assert_no_page_errors()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(make(args.out))
    for name in ("join.png", "room-desktop.png", "room-phone.png", "fallback.png"):
        path = args.out / name
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
