"""The event stream's bytes on the wire: SSE fields, heartbeats, the body's framing over
HTTP/1.1 and HTTP/1.0, and one encode per batch for every reader.

The framing tests pin the private Tornado use in handlers/compat.py
(``response_stream``: the connection's stream the writer bypasses Tornado to; and
``response_is_chunked``: the framing Tornado chose for the headers it wrote).
"""

from __future__ import annotations

import json

import pytest

from handlers import compat, streams
from handlers.wire import DirectWriter
from rooms import Hub
from rooms.models import Batch, Payload, presence_payload
from tests.chatclient import Api, is_event
from tests.streamclient import RawStream, StreamClient, events_path, ndjson_items, sse_blocks

TIMEOUT_S = 30


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@pytest.mark.settings(heartbeat_interval=0.2)
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_sse_on_the_wire_over_http_1_1(api: Api) -> None:
    ani = await api.join("Ani", "kawat")
    await ani.post("satu")
    raw = await RawStream.open(api.base_url, events_path("kawat", after=0),
                               auth(ani.token, Accept="text/event-stream"))
    assert raw.status == 200 and raw.chunked  # compat.response_is_chunked: True for HTTP/1.1
    assert raw.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert raw.headers["cache-control"] == "no-store" and raw.headers["x-accel-buffering"] == "no"
    data = await raw.read_until(lambda d: b"\n: ping\n" in d)  # a heartbeat comes in a quiet room
    blocks = sse_blocks(data.replace(b": ping\n", b""))
    assert blocks[0].startswith(b"retry: 2000\ndata: {\"type\":\"hello\"")
    hello = json.loads(blocks[0].split(b"\ndata: ", 1)[1])
    assert hello["cursor"] == 2 and hello["user"] == "Ani"
    join, message = (json.loads(b.split(b"\n")[1].removeprefix(b"data: ")) for b in blocks[1:3])
    assert blocks[1] == b"id: 1\ndata: " + json.dumps(join, separators=(",", ":")).encode()
    assert blocks[2].startswith(b"id: 2\ndata: ") and message["text"] == "satu"
    assert blocks[3].startswith(b"data: {\"type\":\"presence\"")  # no id: not a room event
    assert all(len(b.split(b"\n")) <= 2 for b in blocks), "one data line per item"
    raw.close()


@pytest.mark.parametrize("connection", ["close", "keep-alive"])
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_over_http_1_0_the_stream_ends_with_the_connection(api: Api, connection: str) -> None:
    ani = await api.join("Ani", "lama")
    raw = await RawStream.open(api.base_url, events_path("lama"), auth(ani.token, Connection=connection),
                               version="1.0")
    assert raw.status == 200 and not raw.chunked  # compat.response_is_chunked: False for HTTP/1.0
    await raw.read_until(lambda d: b'"type":"presence"' in d)
    await ani.leave()
    data, closed = await raw.read_to_end()
    assert closed, "an HTTP/1.0 body has no other end than the connection's close"
    assert ndjson_items(data)[-1]["reason"] == "left"


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_a_batch_is_encoded_once_for_every_reader(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[tuple[DirectWriter, bytes]] = []
    original = DirectWriter.write

    def spy(self: DirectWriter, data: bytes) -> bool:
        written.append((self, data))
        return original(self, data)

    monkeypatch.setattr(DirectWriter, "write", spy)
    client = StreamClient(api.base_url)
    users = [await api.join(f"U{i}", "sekali") for i in range(4)]
    readers = [await client.open(u, "sse") for u in users[:3]] + [await client.open(users[3], "ndjson")]
    for r in readers:
        await r.opening()
    for r in readers[:-1]:  # the later joins (each is the change of the user list)
        await r.until(lambda i: i["type"] == "join" and i["user"] == "U3")
    written.clear()
    await users[0].post("sekali saja")
    for r in readers:
        await r.until(lambda i: i.get("text") == "sekali saja")
    batch_writes = [data for _, data in written if b"sekali saja" in data]
    assert len(batch_writes) == 4
    sse_writes = [data for data in batch_writes if b"\ndata: " in data]
    assert len(sse_writes) == 3 and sse_writes[0] is sse_writes[1] is sse_writes[2], "each SSE reader got its own copy"
    for r in readers:
        await r.close()
    await client.aclose()


def test_stream_items_are_built_once_per_payload_and_batch() -> None:
    event = Payload(b'{"id":7,"type":"message"}', event_id=7)
    users = presence_payload(["Ani"])
    assert streams.SSE.item(event) == b'id: 7\ndata: {"id":7,"type":"message"}\n\n'
    assert streams.SSE.item(event) is event.wire["sse"]
    assert streams.NDJSON.item(users) == users.json + b"\n"
    batch = Batch([event, users])
    chunked = streams.batch_bytes(batch, streams.SSE, chunked=True)
    assert streams.batch_bytes(batch, streams.SSE, chunked=True) is chunked
    body = streams.SSE.item(event) + streams.SSE.item(users)
    assert chunked == b"%x\r\n" % len(body) + body + b"\r\n"
    assert streams.batch_bytes(batch, streams.NDJSON, chunked=False) == event.json + b"\n" + users.json + b"\n"


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_compat_reaches_the_response_stream_only_while_it_is_open(api: Api, hub: Hub) -> None:
    """``compat.response_stream`` on a live stream is the connection's IOStream; once the
    client has gone there is none (the handler then treats the reader as gone)."""
    ani = await api.join("Ani", "aliran")
    budi = await api.join("Budi", "aliran")
    a = await ani.ws()
    await a.handshake()
    raw = await RawStream.open(api.base_url, events_path("aliran"), auth(budi.token))
    await raw.read_until(lambda d: b'"type":"presence"' in d)
    room = hub.loaded("aliran")
    (handler,) = [listener for listener in room.listeners if hasattr(listener, "stream_format")]
    stream = compat.response_stream(handler.request)
    assert stream is not None and stream is handler._writer.stream
    raw.close()
    await a.recv_until(is_event("leave", "Budi"), timeout=10)  # presence_grace=0.3 in the tests
    assert compat.response_stream(handler.request) is None
    a.close()
