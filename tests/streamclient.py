"""Real clients of ``GET /rooms/<room>/events``: what an EventSource, curl and a stuck reader do.

* :class:`EventStream`: httpx streaming the response; SSE parsed by httpx-sse (a parser
  that is not ours), ndjson by lines.  It keeps ``last_event_id`` as a browser's EventSource
  does, so a test can reconnect with ``Last-Event-ID`` the way the browser would.
* :class:`RawStream`: the request on a bare TCP socket, HTTP/1.1 or 1.0, read only when the
  test says so (a small receive buffer plays a reader that stopped reading); it shows the
  body's framing and heartbeats as they are on the wire.
* :func:`curl_stream`: the real ``curl -N`` binary.

Every read has a bounded wait.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from httpx_sse import EventSource

from tests.chatclient import User, _host_port, room_url

RECV_TIMEOUT_S = 5.0
CURL = shutil.which("curl")


def events_path(room: str, **query: Any) -> str:
    params = {k: v for k, v in query.items() if v is not None}
    return room_url(room, "/events") + ("?" + urlencode(params) if params else "")


class StreamClient:
    """One httpx client for a test's streams (no overall read timeout: each read has its own bound)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(RECV_TIMEOUT_S, read=None))

    async def open(self, user: User, fmt: str = "sse", *, room: str | None = None,
                   headers: dict[str, str] | None = None, **query: Any) -> EventStream:
        """Open the stream and check it started (200, the format's content type)."""
        accept = {"sse": "text/event-stream", "ndjson": "application/x-ndjson"}[fmt]
        hdrs = {"Authorization": f"Bearer {user.token}", "Accept": accept, **(headers or {})}
        request = self.http.build_request("GET", events_path(room or user.room, **query), headers=hdrs)
        response = await asyncio.wait_for(self.http.send(request, stream=True), RECV_TIMEOUT_S)
        if response.status_code != 200:
            body = await response.aread()
            await response.aclose()
            raise AssertionError(f"stream refused: {response.status_code} {body!r}")
        assert response.headers["content-type"].startswith(accept), response.headers
        return EventStream(response, fmt)

    async def aclose(self) -> None:
        await self.http.aclose()


class EventStream:
    """Items (JSON objects) of one open stream, in order."""

    def __init__(self, response: httpx.Response, fmt: str) -> None:
        self.response = response
        self.fmt = fmt
        self.last_event_id = ""  # as EventSource keeps it: the id of the last event with an id
        self.retry_ms: int | None = None
        self.ids: list[int] = []  # the ids of the SSE events with an id line, in order
        self._items = self._sse() if fmt == "sse" else self._lines()

    async def _sse(self) -> AsyncIterator[dict[str, Any]]:
        async for sse in EventSource(self.response).aiter_sse():
            if sse.retry is not None:
                self.retry_ms = sse.retry
            if not sse.data:
                continue  # a browser dispatches no event without data
            item = json.loads(sse.data)
            if "id" in item:  # a room event: its SSE id is its id
                assert sse.id == str(item["id"]), (sse.id, item)
                self.ids.append(item["id"])
            self.last_event_id = sse.id
            yield item

    async def _lines(self) -> AsyncIterator[dict[str, Any]]:
        async for line in self.response.aiter_lines():
            yield json.loads(line)

    async def item(self, timeout: float = RECV_TIMEOUT_S, pings: bool = False) -> dict[str, Any] | None:
        """The next item, or None once the server has ended the body (ndjson pings skipped unless asked)."""
        while True:
            try:
                item = await asyncio.wait_for(anext(self._items), timeout)
            except StopAsyncIteration:
                return None
            if pings or item.get("type") != "ping":
                return item

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = RECV_TIMEOUT_S,
                    seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Skip items until one matches (``seen`` collects every item read); fail at the end or on timeout."""
        async def _loop() -> dict[str, Any]:
            while True:
                item = await self.item(timeout)
                assert item is not None, "the stream ended before the expected item"
                if seen is not None:
                    seen.append(item)
                if predicate(item):
                    return item
        return await asyncio.wait_for(_loop(), timeout)

    async def opening(self) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
        """hello, the replayed events, and the user list that follow it."""
        hello = await self.item()
        assert hello is not None and hello["type"] == "hello", hello
        events: list[dict[str, Any]] = []
        while True:
            item = await self.item()
            assert item is not None, "the stream ended in its opening"
            if item["type"] == "presence":
                return hello, events, item["users"]
            events.append(item)

    async def rest(self, timeout: float = RECV_TIMEOUT_S) -> list[dict[str, Any]]:
        """Every item up to the end of the body (the server ended the stream)."""
        items: list[dict[str, Any]] = []
        while (item := await self.item(timeout)) is not None:
            items.append(item)
        return items

    async def close(self) -> None:
        """Drop the connection, as a browser does when the network goes."""
        await self.response.aclose()


# -- a bare socket ---------------------------------------------------------------------------


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The data of an HTTP/1.1 chunked body so far, and whether its last (empty) chunk came."""
    out, pos = bytearray(), 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out), False
        size = int(body[pos:eol], 16)
        if size == 0:
            return bytes(out), True
        end = eol + 2 + size
        if len(body) < end + 2:
            return bytes(out), False
        assert body[end:end + 2] == b"\r\n", "a chunk must end with CRLF"
        out += body[eol + 2:end]
        pos = end + 2


class RawStream:
    """``GET .../events`` on a bare TCP connection, read only when asked."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.raw = b""  # the body as received, framing included

    @classmethod
    async def open(cls, base_url: str, path: str, headers: dict[str, str], version: str = "1.1",
                   rcvbuf_bytes: int | None = None) -> RawStream:
        host, port = _host_port(base_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf_bytes is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)  # before connect: sets the window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        # A small StreamReader limit: asyncio stops reading the socket once that much is buffered.
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 14)
        lines = [f"GET {path} HTTP/{version}", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        stream = cls(reader, writer)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), RECV_TIMEOUT_S)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        stream.status = int(status_line.split()[1])
        stream.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        return stream

    @property
    def chunked(self) -> bool:
        return self.headers.get("transfer-encoding") == "chunked"

    def body(self) -> tuple[bytes, bool]:
        """The body's data so far, and whether it is complete."""
        return dechunk(self.raw) if self.chunked else (self.raw, False)

    async def read_some(self, timeout: float = RECV_TIMEOUT_S) -> bool:
        """Read what is there (waiting up to ``timeout`` for something); False at end of stream."""
        data = await asyncio.wait_for(self.reader.read(1 << 16), timeout)
        self.raw += data
        return bool(data)

    async def read_until(self, predicate: Callable[[bytes], bool], timeout: float = RECV_TIMEOUT_S) -> bytes:
        """Read until the body's data so far satisfies ``predicate``."""
        async def _loop() -> bytes:
            while not predicate(self.body()[0]):
                assert await self.read_some(timeout), f"the connection closed; got {self.raw[-300:]!r}"
            return self.body()[0]
        return await asyncio.wait_for(_loop(), timeout)

    async def read_to_end(self, timeout: float = RECV_TIMEOUT_S) -> tuple[bytes, bool]:
        """Read until the body ends: its last chunk (chunked) or the connection's close.

        Returns the data and whether the server closed the connection."""
        async def _loop() -> tuple[bytes, bool]:
            while True:
                data, complete = self.body()
                if complete:
                    return data, False
                if not await self.read_some(timeout):
                    return self.body()[0], True
        return await asyncio.wait_for(_loop(), timeout)

    def close(self) -> None:
        self.writer.close()


def ndjson_items(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.split(b"\n") if line]


def sse_blocks(data: bytes) -> list[bytes]:
    """The blocks of an SSE body (what lies between blank lines)."""
    return [block for block in data.split(b"\n\n") if block]


# -- curl -------------------------------------------------------------------------------------


needs_curl = pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")


async def curl_stream(base_url: str, path: str, token: str, *args: str) -> asyncio.subprocess.Process:
    """``curl -N -sS -H "Authorization: Bearer …" URL``, its stdout a pipe to read lines from."""
    assert CURL is not None
    return await asyncio.create_subprocess_exec(
        CURL, "-N", "-sS", "-H", f"Authorization: Bearer {token}", *args, base_url + path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)


async def curl_line(proc: asyncio.subprocess.Process, timeout: float = RECV_TIMEOUT_S) -> bytes:
    """The next line curl printed (b"" once it has exited)."""
    assert proc.stdout is not None
    return await asyncio.wait_for(proc.stdout.readline(), timeout)
