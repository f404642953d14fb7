"""RFC 6455 as a server must enforce it, from a raw client that breaks it on purpose.

A frame the protocol forbids (unmasked, RSV bits with no extension, an unknown opcode, a control
frame over 125 bytes or fragmented, a continuation of nothing) is answered with a close frame 1002,
text that is not UTF-8 with 1007, an invalid close code with 1002; then the server closes the TCP
connection, and nothing the bad frame carried is stored or acknowledged.  A valid close is echoed.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from tests.chatclient import RawWebSocket, User, room_url

ROOM = "protokol"
MESSAGE = json.dumps({"type": "message", "text": "halo", "client_id": "c-1"}).encode()


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


async def opened(api: Any, name: str = "Raka") -> tuple[User, RawWebSocket]:
    user = await api.join(name, ROOM)
    raw = await RawWebSocket.connect(api.base_url, room_url(ROOM, "/ws"), user.token)
    while (await raw.json_frame())["type"] != "presence":  # hello, the replay, presence
        pass
    return user, raw


async def stored_messages(user: User) -> list[str]:
    resp = await user.poll()
    assert resp.status == 200, resp.body
    return [e["text"] for e in resp.json["events"] if e["type"] == "message"]


# (opcode, payload, send_frame options) of each frame sent, in order
Frame = tuple[int, bytes, dict[str, Any]]

BAD_FRAMES: list[Any] = [
    pytest.param([(0x1, MESSAGE, {"masked": False})], 1002, id="unmasked-text"),
    pytest.param([(0x9, b"ping", {"masked": False})], 1002, id="unmasked-ping"),
    pytest.param([(0x1, MESSAGE, {"rsv": 0x40})], 1002, id="rsv1-without-extension"),
    pytest.param([(0x1, MESSAGE, {"rsv": 0x20})], 1002, id="rsv2"),
    pytest.param([(0x1, MESSAGE, {"rsv": 0x10})], 1002, id="rsv3"),
    pytest.param([(0x3, MESSAGE, {})], 1002, id="opcode-0x3"),
    pytest.param([(0x3, MESSAGE, {"fin": False}), (0x0, b"", {})], 1002, id="opcode-0x3-fragmented"),
    pytest.param([(0xB, b"", {})], 1002, id="opcode-0xb"),
    pytest.param([(0x9, b"p" * 200, {})], 1002, id="ping-of-200-bytes"),
    pytest.param([(0xA, b"p" * 126, {})], 1002, id="pong-of-126-bytes"),
    pytest.param([(0x9, b"p", {"fin": False})], 1002, id="fragmented-ping"),
    pytest.param([(0x8, close_payload(1000), {"fin": False})], 1002, id="fragmented-close"),
    pytest.param([(0x0, MESSAGE, {})], 1002, id="continuation-of-nothing"),
    pytest.param([(0x1, MESSAGE[:9], {"fin": False}), (0x1, MESSAGE, {})], 1002,
                 id="new-message-inside-a-fragmented-one"),
    pytest.param([(0x1, b'{"type": "message", "text": "\xff\xfe", "client_id": "c-1"}', {})], 1007,
                 id="text-not-utf8"),
    pytest.param([(0x1, b'{"type": "message", "text": "caf\xc3', {"fin": False}), (0x0, b'"}', {})], 1007,
                 id="fragmented-text-not-utf8"),
    pytest.param([(0x1, b'{"type": "message", "text": "\xed\xa0\x80"}', {})], 1007, id="text-with-a-surrogate"),
    pytest.param([(0x8, close_payload(999), {})], 1002, id="close-999"),
    pytest.param([(0x8, close_payload(1004), {})], 1002, id="close-1004"),
    pytest.param([(0x8, close_payload(1005), {})], 1002, id="close-1005"),
    pytest.param([(0x8, close_payload(1006), {})], 1002, id="close-1006"),
    pytest.param([(0x8, close_payload(1015), {})], 1002, id="close-1015"),
    pytest.param([(0x8, close_payload(2999), {})], 1002, id="close-2999"),
    pytest.param([(0x8, close_payload(5000), {})], 1002, id="close-5000"),
    pytest.param([(0x8, b"\x03", {})], 1002, id="close-with-one-byte"),
    pytest.param([(0x8, close_payload(1000, b"bye \xff"), {})], 1007, id="close-reason-not-utf8"),
]


@pytest.mark.parametrize(("frames", "code"), BAD_FRAMES)
@pytest.mark.gen_test(timeout=20)
async def test_protocol_error_gets_a_close_frame_then_the_connection_ends(api, frames: list[Frame], code: int):
    user, raw = await opened(api)
    for opcode, payload, options in frames:
        await raw.send_frame(opcode, payload, **options)
    before: list[tuple[int, bytes]] = []
    while True:  # everything up to the close frame: no ack, no error reply, no echo of the message
        got = await raw.frame()
        assert got is not None, f"the connection ended without a close frame (after {before})"
        if got[0] == 0x8:
            break
        before.append(got)
    assert [f for f in before if f[0] != 0x9] == []  # (a ping of the server's may come first)
    payload = got[1]
    assert len(payload) >= 2 and int.from_bytes(payload[:2], "big") == code, payload
    payload[2:].decode("utf-8")  # the reason says why, in valid UTF-8
    await raw.eof()  # and then the server closes the TCP connection
    assert await stored_messages(user) == []
    raw.close()


@pytest.mark.gen_test(timeout=20)
async def test_length_with_the_most_significant_bit_set_is_a_protocol_error(api):
    _user, raw = await opened(api)
    raw.writer.write(b"\x81\xff" + struct.pack("!Q", 1 << 63) + b"\x00\x00\x00\x00")
    await raw.writer.drain()
    assert await raw.close_frame() == (1002, b"payload length over 2**63")
    await raw.eof()
    raw.close()


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1008, 1011, 1012, 1013, 1014, 3000, 4409, 4999])
@pytest.mark.gen_test(timeout=20)
async def test_valid_close_code_is_echoed(api, code: int):
    _user, raw = await opened(api)
    await raw.send_frame(0x8, close_payload(code, "sampai jumpa 👋".encode()))
    assert await raw.close_frame() == (code, b"")
    await raw.eof()
    raw.close()


@pytest.mark.gen_test(timeout=20)
async def test_close_without_a_code_is_answered_without_one(api):
    _user, raw = await opened(api)
    await raw.send_frame(0x8)
    assert await raw.close_frame() == (None, b"")
    await raw.eof()
    raw.close()


@pytest.mark.gen_test(timeout=20)
async def test_fragmented_message_split_inside_a_character_with_a_ping_between_is_stored(api):
    user, raw = await opened(api)
    text = "kopi ☕ é"
    body = json.dumps({"type": "message", "text": text, "client_id": "frag-1"}, ensure_ascii=False).encode()
    cut = body.index("☕".encode()) + 1  # inside the three bytes of ☕
    await raw.send_frame(0x1, body[:cut], fin=False)
    await raw.send_frame(0x9, b"masih?")  # a control frame between fragments is allowed
    await raw.send_frame(0x0, body[cut:cut + 3], fin=False)
    await raw.send_frame(0x0, body[cut + 3:])
    pong = await raw.frame()
    while pong is not None and pong[0] == 0x9:  # the server's own pings
        pong = await raw.frame()
    assert pong == (0xA, b"masih?")
    event = await raw.json_frame()
    assert (event["type"], event["text"]) == ("message", text)
    ack = await raw.json_frame()
    assert ack == {"type": "ack", "client_id": "frag-1", "id": event["id"]}
    assert await stored_messages(user) == [text]
    await raw.send_frame(0x8, close_payload(1000))
    assert await raw.close_frame() == (1000, b"")
    raw.close()


@pytest.mark.gen_test(timeout=20)
async def test_others_in_the_room_are_untouched_by_a_peer_that_breaks_the_protocol(api):
    ani = await api.join("Ani", ROOM)
    a = await ani.ws()
    await a.handshake()
    _user, raw = await opened(api, "Raka")
    await raw.send_frame(0x1, MESSAGE, masked=False)
    assert (await raw.close_frame() or (None, b""))[0] == 1002
    await a.send({"type": "message", "text": "masih di sini", "client_id": "a-1"})
    while (frame := await a.recv()) is not None and frame.get("type") != "ack":
        assert frame.get("text") != "halo", "the unmasked message was stored"
    assert frame is not None and frame["client_id"] == "a-1"
    raw.close()
    a.close()
