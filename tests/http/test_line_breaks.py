"""Line breaks arrive as CR LF from a browser's form (HTML submits a textarea that way), as a lone
CR from some old clients, and as LF from everyone else: every input path stores LF, once, and
a CR is never taken for a forbidden control character (issue 12, item 1)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.chatclient import form_join, is_event, room_url, session_cookie

ROOM = "baris"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SENT = ["satu\r\ndua", "tiga\rempat", "lima\r\n\r\nenam", "tujuh\n\rdelapan"]
STORED = ["satu\ndua", "tiga\nempat", "lima\n\nenam", "tujuh\n\ndelapan"]


async def stored_texts(api) -> list[str]:
    reader = await api.join("Pembaca", ROOM)
    resp = await reader.poll(limit=200)
    assert resp.status == 200, resp.body
    return [e["text"] for e in resp.json["events"] if e["type"] == "message"]


@pytest.mark.gen_test
async def test_a_form_post_with_crlf_line_breaks_is_stored_with_lf(api):
    cookie = session_cookie(await form_join(api, "Budi", ROOM))
    for text in SENT:
        resp = await api.request("POST", room_url(ROOM, "/messages"), body="text=" + quote(text),
                                 headers={"Cookie": cookie, **FORM})
        assert resp.status == 303, resp.body[:300]
    assert await stored_texts(api) == STORED


@pytest.mark.gen_test
async def test_a_json_post_with_crlf_line_breaks_is_stored_with_lf(api):
    budi = await api.join("Budi", ROOM)
    for text, want in zip(SENT, STORED, strict=True):
        resp = await budi.post(text)
        assert resp.status == 201, resp.body
        assert resp.json["text"] == want
    assert await stored_texts(api) == STORED


@pytest.mark.gen_test
async def test_a_websocket_message_with_crlf_line_breaks_is_stored_with_lf(api):
    budi = await api.join("Budi", ROOM)
    sock = await budi.ws()
    try:
        await sock.handshake()
        for i, (text, want) in enumerate(zip(SENT, STORED, strict=True)):
            await sock.send({"type": "message", "text": text, "client_id": f"c-{i}"})
            got = await sock.recv_until(lambda f: f.get("type") in ("message", "error"))
            assert got["type"] == "message" and got["text"] == want, got
    finally:
        sock.close()
    assert await stored_texts(api) == STORED


@pytest.mark.gen_test
async def test_other_control_characters_are_still_refused(api):
    budi = await api.join("Budi", ROOM)
    for text in ("a\x00b", "a\x0bb", "a\u2028b", "a\x85b"):
        resp = await budi.post(text)
        assert resp.status == 400 and resp.json["error"] == "invalid_text", (text, resp.body)
    assert not any(is_event("message")(e) for e in (await budi.poll(limit=200)).json["events"])
