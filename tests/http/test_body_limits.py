"""Request bodies over the limit get ``413 payload_too_large`` JSON at any size, over the server's
real HTTPServer options (a 1 MiB ``max_body_size``, as ``chat.serve`` runs it): refused from
``Content-Length`` before any of the body is read, counted as a chunked body arrives, and memory
never holds more than the limit."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess

import pytest
import tornado.httpserver
import tornado.web

from chat import HTTP_SERVER_MAX_BODY_BYTES
from handlers import compat
from handlers.base import BODY_DRAIN_MAX_BYTES, http_body_limit
from rooms.validation import TEXT_MAX_CHARS_DEFAULT
from tests.chatclient import RECV_TIMEOUT_S, Api, room_url
from tests.realserver import http_server  # noqa: F401 (a fixture: the HTTPServer options of chat.serve)
from tests.servers import free_port

LIMIT = http_body_limit(TEXT_MAX_CHARS_DEFAULT)  # the server's: 28 KiB for 2,000 characters


async def connect(chat_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = chat_url.split("://", 1)[1].rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the next answer; skips ``100 Continue``."""
    async def _read() -> tuple[int, dict[str, str], bytes]:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status = int(head.split(" ", 2)[1])
            if status != 100:
                break
        headers = {k.lower(): v.strip() for k, v in re.findall(r"\r\n([^:\r\n]+):([^\r\n]*)", head)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body
    return await asyncio.wait_for(_read(), RECV_TIMEOUT_S)


async def closed_cleanly(reader: asyncio.StreamReader) -> bool:
    """True when the server closes the connection with nothing more to say (EOF, not a reset)."""
    try:
        return await asyncio.wait_for(reader.read(), RECV_TIMEOUT_S) == b""
    except ConnectionResetError:
        return False


def assert_413(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413, (status, body)
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["error"] == "payload_too_large"
    assert headers.get("connection") == "close"


def request_head(method: str, path: str, token: str, **headers: str | int) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}",
             "Content-Type: application/json",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.gen_test
async def test_a_huge_content_length_is_refused_before_any_of_the_body_is_sent(api: Api, chat_url):
    user = await api.join("Ani", "besar")
    for declared in (LIMIT + 1, HTTP_SERVER_MAX_BODY_BYTES + 1, 10 << 30):  # up to 10 GiB, never sent
        for expect in ({}, {"Expect": "100-continue"}):
            if not expect and declared <= BODY_DRAIN_MAX_BYTES:
                continue  # a body the server reads through: the next test
            reader, writer = await connect(chat_url)
            writer.write(request_head("POST", room_url("besar", "/messages"), user.token,
                                      Content_Length=declared, **expect))
            await writer.drain()
            status, headers, body = await read_answer(reader)  # answered with no byte of the body sent
            assert_413(status, headers, body)
            assert await closed_cleanly(reader)
            writer.close()
    # nothing was stored, and the server goes on
    assert [e["type"] for e in (await user.poll(after=0, wait=0)).json["events"]] == ["join"]
    assert (await user.post("masih di sini")).status == 201


@pytest.mark.gen_test
async def test_a_client_that_sends_its_whole_body_before_reading_still_gets_the_413(api: Api, chat_url):
    """Python's http.client, requests, Tornado's client: the body goes out first, then they read.
    The server answers at once, then reads the body through and drops it, and closes cleanly."""
    user = await api.join("Ani", "besar")
    for size in (LIMIT + 1, HTTP_SERVER_MAX_BODY_BYTES + 1, 4 << 20):
        body = json.dumps({"text": "x" * size}).encode()
        reader, writer = await connect(chat_url)
        writer.write(request_head("POST", room_url("besar", "/messages"), user.token, Content_Length=len(body)))
        writer.write(body)
        await writer.drain()
        status, headers, answer = await read_answer(reader)
        assert_413(status, headers, answer)
        assert await closed_cleanly(reader), size
        writer.close()
    # the same through a real client (Tornado's), on every path that takes a POST
    big = json.dumps({"text": "x" * (3 << 20)})
    for path in (room_url("besar", "/messages"), "/join", room_url("besar", "/leave"), "/rooms/besar/users"):
        resp = await api.request("POST", path, token=user.token, body=big, headers={"Content-Type": "application/json"})
        assert resp.status == 413 and resp.json["error"] == "payload_too_large", (path, resp.status)
    assert (await user.post("masih di sini")).status == 201


@pytest.mark.gen_test
async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(api: Api, chat_url):
    user = await api.join("Ani", "besar")
    reader, writer = await connect(chat_url)
    writer.write(request_head("POST", room_url("besar", "/messages"), user.token, Transfer_Encoding="chunked"))
    piece = b"x" * 4096
    for _ in range(LIMIT // len(piece) + 1):  # just over the limit; the body's end never comes
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
    await writer.drain()
    assert_413(*await read_answer(reader))
    writer.close()
    # under the limit, chunked works as any body does
    reader, writer = await connect(chat_url)
    writer.write(request_head("POST", room_url("besar", "/messages"), user.token, Transfer_Encoding="chunked"))
    text = json.dumps({"text": "dalam potongan"}).encode()
    for part in (text[:5], text[5:]):
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    status, _headers, body = await read_answer(reader)
    assert status == 201 and json.loads(body)["text"] == "dalam potongan"
    writer.close()


@pytest.mark.gen_test
async def test_curl_sends_big_bodies_with_expect_and_gets_the_413(api: Api, chat_url, tmp_path):
    user = await api.join("Ani", "besar")
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"text": "x" * (3 << 20)}))
    for extra in ([], ["-H", "Expect:"], ["-H", "Transfer-Encoding: chunked"]):
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", f"Authorization: Bearer {user.token}",
            "-H", "Content-Type: application/json", *extra, "--data-binary", f"@{path}",
            chat_url + room_url("besar", "/messages"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        body, _, code = out.decode().rpartition("\n")
        assert proc.returncode == 0, err
        assert code == "413" and json.loads(body)["error"] == "payload_too_large", (extra, out)


@pytest.mark.gen_test
async def test_a_bad_content_length_is_a_json_400(api: Api, chat_url):
    user = await api.join("Ani", "besar")
    for value in ("abc", "5, 6", "-1"):
        reader, writer = await connect(chat_url)
        writer.write(request_head("POST", room_url("besar", "/messages"), user.token, Content_Length=value))
        await writer.drain()
        status, _headers, body = await read_answer(reader)
        assert status == 400 and json.loads(body)["error"] == "bad_request", (value, status, body)
        writer.close()


# -- handlers/compat.py: read_body_through ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_compat_read_body_through_lets_a_handler_answer_first_and_drop_a_body_over_max_body_size():
    """What ``read_body_through`` relies on: past ``max_body_size`` once allowed; a handler that
    finishes while its body arrives is told ``on_connection_close`` once the body has been read,
    and its method never runs."""
    events: list[str] = []
    done = asyncio.Event()

    @tornado.web.stream_request_body
    class Early(tornado.web.RequestHandler):
        left = 0

        def prepare(self) -> None:
            self.left = int(self.request.headers["Content-Length"])
            compat.read_body_through(self.request, self.left, 5.0)
            self.set_header("Content-Length", "2")
            self.write(b"no")
            self.flush()

        def data_received(self, chunk: bytes) -> None:
            self.left -= len(chunk)
            if self.left == 0:
                events.append("read")
                self.finish()

        def post(self) -> None:
            events.append("post")

        def on_connection_close(self) -> None:
            super().on_connection_close()
            events.append("closed")
            done.set()

    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/", Early)]), max_body_size=1024)
    port = free_port()
    server.listen(port, "127.0.0.1")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b"y" * 100_000  # far over max_body_size: Tornado alone would answer a bare 400
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        status, _headers, answer = await read_answer(reader)
        assert (status, answer) == (200, b"no")
        assert await closed_cleanly(reader)
        await asyncio.wait_for(done.wait(), RECV_TIMEOUT_S)
        assert events == ["read", "closed"]
        writer.close()
    finally:
        server.stop()
        await server.close_all_connections()
