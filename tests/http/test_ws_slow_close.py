"""A reader closed as too slow (``--max-backlog``) still learns why: 1013 after whole frames.

The unsent backlog is cut at a frame boundary, the close frame follows what was already on its
way, and the socket alone (the member is gone at once) is kept until that close frame has left or
a bound passes: the ping timeout, or 30 s with pings off.  A slow reader reads late, so the tests
read late too: after Tornado's own 5 s wait for a close reply, and, for the bound, never.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.chatclient import Api, RawWebSocket, Socket, User, is_event, is_presence, room_url

TEXT_CHARS = 2000
MAX_MESSAGES = 20000  # a bound, far above what the kernel buffers can hide
READ_LATE_S = 6.0  # the slow reader starts reading this long after its close: past Tornado's 5 s
CHECK_EVERY = 50  # messages Ani sends before she waits to have read them all


class Talker:
    """Ani, who keeps up: sends numbered messages and reads everything, checking order as she goes."""

    def __init__(self, sock: Socket, watch: str) -> None:
        self.sock = sock
        self.watch = watch  # the member whose leave she waits for
        self.sent = 0
        self.received: list[dict[str, Any]] = []  # her messages, as broadcast
        self.events: list[dict[str, Any]] = []  # every event with an id
        self.left = asyncio.Event()  # the watched member's leave has arrived
        self._progress = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            frame = await self.sock.recv(timeout=30)
            assert frame is not None, "the reader that keeps up was closed"
            async with self._progress:
                if "id" in frame:
                    self.events.append(frame)
                if frame["type"] == "message":
                    self.received.append(frame)
                elif frame["type"] == "leave" and frame["user"] == self.watch:
                    self.left.set()
                self._progress.notify_all()

    async def _until(self, predicate: Callable[[], bool]) -> None:
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(lambda: predicate() or self._reader.done()), 30)
        if self._reader.done():
            self._reader.result()  # raises what went wrong

    async def send(self, pad: str = "x" * (TEXT_CHARS - 10)) -> None:
        await self.sock.send({"type": "message", "text": f"{self.sent:08d} {pad}"})
        self.sent += 1
        if self.sent % CHECK_EVERY == 0:  # she reads everything sent so far before more is sent
            await self._until(lambda: len(self.received) >= self.sent)

    async def until_left(self) -> None:
        """Flood until the watched member is closed as slow (its leave follows at once: grace 0)."""
        while not self.left.is_set():
            assert self.sent < MAX_MESSAGES, "the slow reader was never closed"
            await self.send()

    async def settle(self) -> None:
        """Everything sent has come back, in order, and nobody but the watched member left."""
        await self._until(lambda: len(self.received) >= self.sent)
        assert [int(m["text"][:8]) for m in self.received] == list(range(self.sent))
        ids = [e["id"] for e in self.events]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        assert [(e["type"], e["user"]) for e in self.events if e["type"] != "message"] == [("leave", self.watch)]

    def stop(self) -> None:
        self._reader.cancel()


async def slow_reader(api: Api, room: str, talker_name: str) -> tuple[User, RawWebSocket, Socket, dict]:
    """Ani with a normal socket, Sari on a raw one with a 4 KiB receive buffer that reads nothing
    after the opening; the server-side socket of Sari; Sari's join event."""
    ani = await api.join(talker_name, room)
    sari = await api.join("Sari", room)
    a = await ani.ws()
    await a.handshake()
    slow = await RawWebSocket.connect(api.base_url, room_url(room, "/ws"), sari.token, rcvbuf_bytes=4096)
    opening = [await slow.json_frame()]
    while opening[-1]["type"] != "presence":
        opening.append(await slow.json_frame())
    join = opening[-2]
    assert (join["type"], join["user"]) == ("join", "Sari")
    await a.recv_until(is_event("join", "Sari"))
    await a.recv_until(is_presence([talker_name, "Sari"]))
    return sari, slow, a, join


def server_stream(hub: Any, room: str, name: str) -> Any:
    """The server's stream of ``name``'s socket in ``room``, with an event set when it closes."""
    matches = [s for s in hub.loaded(room).listeners if s.session.name == name]
    assert len(matches) == 1
    stream = matches[0].ws_connection.stream
    closed = asyncio.Event()
    stream.set_close_callback(closed.set)  # a detached WebSocket stream has no close callback of its own
    return stream, closed


@pytest.mark.settings(max_backlog=20000, rate_limit=0, presence_grace=0.0, buffer_size=50000, ping_interval=0)
@pytest.mark.gen_test(timeout=60)
async def test_slow_reader_that_reads_late_gets_whole_frames_then_1013_and_resumes(api, hub):
    sari, slow, a, join = await slow_reader(api, "lambat", "Ani")
    _stream, closed = server_stream(hub, "lambat", "Sari")
    ani = Talker(a, "Sari")
    await ani.until_left()
    # The room goes on without her; she reads only after Tornado would have dropped her socket.
    deadline = asyncio.get_running_loop().time() + READ_LATE_S
    while asyncio.get_running_loop().time() < deadline:
        await ani.send()
    await ani.settle()
    assert not closed.is_set(), "the slow reader's socket was dropped before its close frame could leave"

    # Her stream: whole frames (each a JSON object), a prefix of the room, then the close frame.
    frames, code = await slow.json_frames_until_close(timeout=10)
    assert code == 1013
    got = [f for f in frames if f["type"] == "message"]
    assert got == ani.received[: len(got)]
    assert len(got) < ani.sent
    await slow.send_frame(0x8, (1013).to_bytes(2, "big"))  # her close reply: the server closes at once
    await slow.eof(timeout=5)
    await asyncio.wait_for(closed.wait(), 5)
    slow.close()

    # She resumes from her cursor: exactly the rest, no gap, no duplicate.
    cursor = got[-1]["id"] if got else join["id"]
    again = await sari.ws(after=cursor)
    hello, replay, users = await again.handshake()
    assert hello["truncated"] is False
    assert [e for e in replay if e["type"] == "message"] == ani.received[len(got):]
    assert [e["id"] for e in replay] == list(range(cursor + 1, hello["cursor"] + 1))
    assert users == ["Ani", "Sari"]
    ani.stop()
    again.close()
    a.close()


@pytest.mark.settings(max_backlog=20000, rate_limit=0, presence_grace=0.0, buffer_size=50000, ping_interval=2.0)
@pytest.mark.gen_test(timeout=60)
async def test_slow_reader_that_never_reads_is_dropped_when_the_ping_timeout_passes(api, hub):
    _sari, slow, a, _join = await slow_reader(api, "macet", "Ani")
    stream, closed = server_stream(hub, "macet", "Sari")
    ani = Talker(a, "Sari")
    await ani.until_left()
    left_at = asyncio.get_running_loop().time()
    await asyncio.wait_for(closed.wait(), 2.0 + 5)  # the bound (the ping timeout: 2 s), and a margin
    assert asyncio.get_running_loop().time() - left_at > 1.0  # kept for a while, not dropped at once
    for _ in range(CHECK_EVERY):  # and Ani was never held up
        await ani.send()
    await ani.settle()
    assert stream.closed()
    ani.stop()
    slow.close()
    a.close()
