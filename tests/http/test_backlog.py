"""Peers that stop reading or stop answering: closed without delaying anyone else, and presence follows."""

from __future__ import annotations

import asyncio

import pytest

from tests.chatclient import RawWebSocket, is_event, is_presence, room_url

TEXT_CHARS = 2000
MAX_MESSAGES = 20000  # a bound, far above what the kernel buffers can hide


# metrics_port: metrics on (the in-process app binds no port; the test reads the app's registry).
@pytest.mark.settings(max_backlog=20000, rate_limit=0, presence_grace=0.0, buffer_size=50000, metrics_port=1)
@pytest.mark.gen_test(timeout=60)
async def test_slow_reader_is_closed_with_1013_and_resumes_from_its_cursor(api, app):
    ani = await api.join("Ani", "firehose")
    sari = await api.join("Sari", "firehose")
    a = await ani.ws()
    await a.handshake()
    slow = await RawWebSocket.connect(api.base_url, room_url("firehose", "/ws"), sari.token, rcvbuf_bytes=4096)
    opening = [await slow.json_frame()]
    while opening[-1]["type"] != "presence":  # hello, the replay, presence
        opening.append(await slow.json_frame())
    join = opening[-2]
    assert opening[0]["type"] == "hello" and (join["type"], join["user"]) == ("join", "Sari")
    await a.recv_until(is_event("join", "Sari"))
    await a.recv_until(is_presence(["Ani", "Sari"]))
    # From here on Sari reads nothing.

    received: list[dict] = []  # Ani's messages
    events: list[dict] = []  # and every event she got, leaves included
    progress = asyncio.Condition()  # notified on every frame Ani reads
    sari_left = asyncio.Event()

    async def read_all() -> None:
        while True:
            frame = await a.recv(timeout=30)
            assert frame is not None, "the reader that keeps up was closed"
            async with progress:
                if "id" in frame:
                    events.append(frame)
                if frame["type"] == "message":
                    received.append(frame)
                elif frame["type"] == "leave" and frame["user"] == "Sari":
                    sari_left.set()
                progress.notify_all()

    async def until(predicate) -> None:
        async with progress:
            await asyncio.wait_for(progress.wait_for(lambda: predicate() or reader.done()), 30)
        if reader.done():
            reader.result()  # raises what went wrong

    reader = asyncio.ensure_future(read_all())
    pad = "x" * (TEXT_CHARS - 10)
    sent = 0
    while not sari_left.is_set():
        assert sent < MAX_MESSAGES, "the slow reader was never closed"
        await a.send({"type": "message", "text": f"{sent:08d} {pad}"})
        sent += 1
        if sent % 50 == 0:  # Ani keeps up: she reads everything sent so far before more is sent
            await until(lambda n=sent: len(received) >= n)
    # (with presence_grace=0 Sari's leave follows her close at once)
    await a.send({"type": "message", "text": "last"})
    sent += 1
    await until(lambda n=sent: len(received) >= n)
    reader.cancel()

    assert app.metrics_registry.get_sample_value("obrolan_slow_readers_closed_total", {"transport": "websocket"}) == 1
    # Ani, who kept up, got every message, in order, and is still connected.
    assert [int(m["text"][:8]) for m in received[:-1]] == list(range(sent - 1))
    assert [e["id"] for e in events] == list(range(events[0]["id"], events[0]["id"] + len(events)))
    assert [(e["type"], e["user"]) for e in events if e["type"] != "message"] == [("leave", "Sari")]

    # Sari's socket: what the kernel held for her, then the close frame with 1013.
    frames, code = await slow.json_frames_until_close(timeout=5)
    assert code == 1013
    got = [f for f in frames if f["type"] == "message"]
    assert got == received[: len(got)]  # a prefix: in order, no gap
    assert len(got) < sent
    slow.close()

    # She resumes from her cursor: exactly the rest, no gap, no duplicate.
    cursor = got[-1]["id"] if got else join["id"]
    again = await sari.ws(after=cursor)
    hello2, replay, users = await again.handshake()
    assert hello2["truncated"] is False
    messages = [e for e in replay if e["type"] == "message"]
    assert messages == received[len(got):]
    assert [e["id"] for e in replay] == list(range(cursor + 1, hello2["cursor"] + 1))
    assert users == ["Ani", "Sari"]
    again.close()
    a.close()


@pytest.mark.settings(ping_interval=0.2, presence_grace=0.1)
@pytest.mark.gen_test(timeout=20)
async def test_peer_that_stops_answering_pings_is_dropped_and_leaves(api):
    ani = await api.join("Ani", "pings")
    dead = await api.join("Dodi", "pings")
    a = await ani.ws()
    await a.handshake()
    peer = await RawWebSocket.connect(api.base_url, room_url("pings", "/ws"), dead.token)
    await a.recv_until(is_event("join", "Dodi"))
    await a.recv_until(is_presence(["Ani", "Dodi"]))
    # Dodi never reads and never answers a ping; Ani's client answers them and stays. After a missed
    # pong Tornado sends a close frame and gives the peer 5 s to answer it before it drops the
    # connection; the leave follows after the grace period.
    leave = await a.recv_until(is_event("leave", "Dodi"), timeout=12)
    assert leave["user"] == "Dodi"
    await a.recv_until(is_presence(["Ani"]))
    await a.send({"type": "message", "text": "masih hidup"})
    assert (await a.recv_until(is_event("message")))["text"] == "masih hidup"
    assert await ani.users() == ["Ani"]
    peer.close()
    a.close()
