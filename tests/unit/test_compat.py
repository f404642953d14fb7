"""handlers/compat.py: every use of Tornado's private API, one test per function.

Each test fails if Tornado stops doing what the function relies on (an attribute renamed, a
method gone), rather than letting the function quietly answer 0, None or nothing.  No listening
socket: Tornado serves one connection over a socket pair, the client side written by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from handlers.answers import DEFAULT_HEADERS, JSON_CONTENT_TYPE, JsonAnswer
from handlers.compat import (
    OriginCheck,
    drop_handshake_state,
    finish_whole,
    request_stream_closed,
    stream_backlog,
    websocket_stream,
)
from tests.unit.fakes import within

HOST = "chat.example"


@contextlib.asynccontextmanager
async def served(app: Application) -> AsyncIterator[tuple[IOStream, IOStream]]:
    """``app`` serving one connection over a socket pair: (the client's stream, the server's)."""
    server_sock, client_sock = socket.socketpair()
    server_stream, client = IOStream(server_sock), IOStream(client_sock)
    server = HTTPServer(app)
    server.handle_stream(server_stream, ("127.0.0.1", 0))
    try:
        yield client, server_stream
    finally:
        client.close()
        await within(server.close_all_connections())


async def answer(client: IOStream) -> tuple[int, bytes, bytes]:
    """Status, head and body of the next HTTP answer on ``client``."""
    head = await within(client.read_until(b"\r\n\r\n"))
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
    body = await within(client.read_bytes(int(length.group(1)))) if length else b""
    return status, head, body


def masked_text_frame(text: str) -> bytes:
    """A client's WebSocket text frame (clients mask theirs), shorter than 126 bytes."""
    payload, mask = text.encode(), b"\x0b\x16\x21\x2c"
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def text_frame(client: IOStream) -> str:
    """The next unmasked text frame from the server, shorter than 126 bytes."""
    first, length = await within(client.read_bytes(2))
    assert first == 0x81 and length < 126, (first, length)
    return (await within(client.read_bytes(length))).decode()


@pytest.mark.gen_test
async def test_stream_backlog_counts_what_the_kernel_has_not_taken():
    writer_sock, reader_sock = socket.socketpair()
    writer_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    writer, reader = IOStream(writer_sock), IOStream(reader_sock)
    try:
        assert stream_backlog(writer) == 0
        data = b"x" * (4 << 20)  # far more than a socket pair's kernel buffers take
        sent = writer.write(data)
        backlog = stream_backlog(writer)
        assert 0 < backlog <= len(data)
        assert len(await within(reader.read_bytes(len(data)))) == len(data)  # the reader takes it all
        await within(sent)
        assert stream_backlog(writer) == 0
    finally:
        writer.close()
        reader.close()


@pytest.mark.gen_test
async def test_request_stream_closed_says_whether_the_client_is_still_there():
    arrived, gone, done = (asyncio.get_running_loop().create_future() for _ in range(3))
    seen: list[bool] = []

    class Held(RequestHandler):  # a long-poll, as the client sees it
        async def get(self) -> None:
            seen.append(request_stream_closed(self.request))
            arrived.set_result(None)
            await gone
            seen.append(request_stream_closed(self.request))
            done.set_result(None)

        def on_connection_close(self) -> None:
            gone.set_result(None)

    async with served(Application([("/poll", Held)])) as (client, _):
        await client.write(f"GET /poll HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        await within(arrived)
        client.close()  # the client goes away while the request waits
        await within(done)
    assert seen == [False, True]


class Answering(RequestHandler):
    """A JSON answer as Tornado writes it (``/tornado``) or through ``finish_whole`` (``/whole``)."""

    BODY = b'{"events":[],"cursor":7}'

    def initialize(self, finished: list[tuple[str, str]]) -> None:
        self.finished = finished

    def set_default_headers(self) -> None:  # as handlers.base.BaseHandler's
        for name, value in DEFAULT_HEADERS:
            self.set_header(name, value)

    def compute_etag(self) -> None:  # as BaseHandler's: no Etag
        return None

    def get(self, how: str) -> None:
        if how == "whole":
            assert finish_whole(self, JsonAnswer().head(len(self.BODY)), self.BODY)
            assert self._finished  # Tornado's _execute must not finish it again
        else:
            self.set_header("Content-Type", JSON_CONTENT_TYPE)
            self.finish(self.BODY)

    def on_finish(self) -> None:
        self.finished.append((self.request.path, "on_finish"))


def without_date(head: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*", b"", head)


async def closed_after(client: IOStream) -> bool:
    """Whether the server closed the connection (a read gets nothing more)."""
    try:
        await within(client.read_bytes(1))
    except Exception:
        return client.closed()
    return False


@pytest.mark.parametrize("version,connection,stays_open", [
    ("1.1", None, True), ("1.1", "close", False), ("1.0", None, False), ("1.0", "keep-alive", True)])
@pytest.mark.gen_test
async def test_finish_whole_writes_what_tornado_writes_and_keeps_the_connection_as_tornado_does(
        version: str, connection: str | None, stays_open: bool) -> None:
    finished: list[tuple[str, str]] = []
    logged: list[tuple[str, int]] = []
    app = Application([("/(whole|tornado)", Answering, {"finished": finished})],
                      log_function=lambda h: logged.append((h.request.path, h.get_status())))
    extra = f"Connection: {connection}\r\n" if connection else ""
    heads = {}
    for how in ("tornado", "whole"):
        async with served(app) as (client, _):
            await client.write(f"GET /{how} HTTP/{version}\r\nHost: {HOST}\r\n{extra}\r\n".encode())
            status, head, body = await answer(client)
            assert (status, body) == (200, Answering.BODY)
            heads[how] = without_date(head)
            assert (b"\r\nDate: " in head) and head.startswith(b"HTTP/1.1 200 OK\r\n")
            if stays_open:  # keep-alive: the same connection takes the next request
                await client.write(f"GET /{how} HTTP/{version}\r\nHost: {HOST}\r\n{extra}\r\n".encode())
                assert (await answer(client))[2] == Answering.BODY
            else:
                assert await closed_after(client)
    assert heads["whole"] == heads["tornado"]  # byte for byte, Connection header and all
    answers = 2 if stays_open else 1
    assert logged == [("/tornado", 200)] * answers + [("/whole", 200)] * answers
    assert finished == [("/tornado", "on_finish")] * answers + [("/whole", "on_finish")] * answers


class Probe(WebSocketHandler):
    """An echoing WebSocket that notes what the compat functions answer at each stage."""

    def initialize(self, probes: dict[str, Any], opened: asyncio.Future[None], closed: asyncio.Future[None]) -> None:
        self.probes, self.opened, self.closed = probes, opened, closed

    async def get(self, *args: str, **kwargs: str) -> None:
        self.probes["before the handshake"] = websocket_stream(self)
        await super().get(*args, **kwargs)

    def open(self) -> None:
        self.probes["open"] = websocket_stream(self)
        self.probes["cookies"] = {name: morsel.value for name, morsel in self.request.cookies.items()}
        self.probes["101 headers"] = dict(self._headers)
        drop_handshake_state(self)
        self.probes["cookies after"] = dict(self.request.cookies)
        self.probes["headers after"] = (dict(self.request.headers), dict(self._headers))
        self.opened.set_result(None)

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)

    def on_close(self) -> None:
        self.probes["closed"] = websocket_stream(self)
        self.closed.set_result(None)


@contextlib.asynccontextmanager
async def websocket() -> AsyncIterator[tuple[IOStream, IOStream, dict[str, Any], asyncio.Future[None]]]:
    """An open :class:`Probe`: (the client's stream, the server's, the probes, closed)."""
    loop = asyncio.get_running_loop()
    probes: dict[str, Any] = {}
    opened, closed = loop.create_future(), loop.create_future()
    app = Application([("/ws", Probe, {"probes": probes, "opened": opened, "closed": closed})])
    async with served(app) as (client, server_stream):
        await client.write((f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                            "Cookie: obrolan_session=abc; theme=dark\r\n\r\n").encode())
        status, _, _ = await answer(client)
        assert status == 101
        await within(opened)
        yield client, server_stream, probes, closed


@pytest.mark.gen_test
async def test_websocket_stream_is_the_connection_stream_while_it_is_open():
    async with websocket() as (client, server_stream, probes, closed):
        assert probes["before the handshake"] is None
        assert probes["open"] is server_stream  # the socket's own stream: DirectWriter writes to it
        client.close()
        await within(closed)
        assert probes["closed"] is None


@pytest.mark.gen_test
async def test_drop_handshake_state_frees_the_headers_and_cookies_and_the_socket_goes_on():
    async with websocket() as (client, _, probes, _):
        assert probes["cookies"] == {"obrolan_session": "abc", "theme": "dark"}
        assert "Sec-Websocket-Accept" in probes["101 headers"]  # the 101 answer's headers are kept there
        assert probes["cookies after"] == {}  # the cached cookies went with the request's headers
        assert probes["headers after"] == ({}, {})
        await client.write(masked_text_frame("masih hidup?"))
        assert await text_frame(client) == "masih hidup?"


@pytest.mark.gen_test
async def test_origin_check_refuses_a_malformed_origin_and_still_matches_the_host():
    class Form(OriginCheck):
        def post(self) -> None:
            self.write("ok")

    app = Application([("/form", Form)], cross_origin_protection=True)
    for origin, expected in [(f"http://{HOST}", 200), ("http://elsewhere.example", 403), ("http://[", 403)]:
        async with served(app) as (client, _):
            await client.write((f"POST /form HTTP/1.1\r\nHost: {HOST}\r\nOrigin: {origin}\r\n"
                                "Content-Length: 0\r\n\r\n").encode())
            status, _, body = await answer(client)
            assert status == expected, (origin, status, body)  # never a 500
