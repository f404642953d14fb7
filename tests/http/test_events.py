"""``GET /rooms/<room>/events`` with real clients: an SSE client (httpx-sse) that resumes by
``Last-Event-ID``, an ndjson reader, the real ``curl -N``, and a reader that stops reading.

What is asserted is what a user sees: every event once, in id order, across a reconnect;
who is in the room; the last item of a stream saying why it ended.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from rooms import Hub
from tests.chatclient import Api, is_event, is_presence, room_url
from tests.streamclient import (
    EventStream,
    RawStream,
    StreamClient,
    curl_line,
    curl_stream,
    events_path,
    ndjson_items,
    needs_curl,
)

TIMEOUT_S = 30


@pytest.fixture
def streams(chat_url: str, io_loop: IOLoop) -> Iterator[StreamClient]:
    client = StreamClient(chat_url)
    yield client
    io_loop.run_sync(client.aclose)


def is_text(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda item: item.get("type") == "message" and item.get("text") == text


def people(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], e["user"]) for e in events if e["type"] in ("join", "leave")]


async def texts_until(stream: EventStream, last: str, seen: list[dict]) -> list[str]:
    await stream.until(is_text(last), seen=seen)
    return [i["text"] for i in seen if i["type"] == "message"]


@pytest.mark.settings(presence_grace=10)
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_sse_client_resumes_by_last_event_id_with_no_gap_and_no_duplicate(api: Api,
                                                                                streams: StreamClient) -> None:
    ani = await api.join("Ani", "sse")
    budi = await api.join("Budi", "sse")
    for text in ("sebelum 1", "sebelum 2"):
        assert (await ani.post(text)).status == 201

    # The browser opens EventSource("/rooms/sse/events"), no cursor: the tail, then live.
    first = await streams.open(budi)
    hello, replay, users = await first.opening()
    ws_hello, _, _ = await (await ani.ws()).handshake()
    assert set(hello) == set(ws_hello) and hello["user"] == "Budi" and hello["truncated"] is False
    assert first.retry_ms == 2000  # the browser's reconnect delay comes with the first item
    assert [e["text"] for e in replay if e["type"] == "message"] == ["sebelum 1", "sebelum 2"]
    assert users == ["Ani", "Budi"] and replay[-1]["type"] == "join" and replay[-1]["user"] == "Budi"
    seen = list(replay)
    for text in ("live 1", "live 2"):
        await ani.post(text)
    assert await texts_until(first, "live 2", seen) == ["sebelum 1", "sebelum 2", "live 1", "live 2"]
    last_id = first.last_event_id
    assert last_id == str(seen[-1]["id"])

    # The network goes; the room goes on.
    await first.close()
    missed = ["selama putus 1", "selama putus 2", "selama putus 3"]
    for text in missed:
        await ani.post(text)

    # EventSource reconnects to the same URL with Last-Event-ID: exactly what it missed, then live.
    second = await streams.open(budi, headers={"Last-Event-ID": last_id})
    hello2, replay2, users2 = await second.opening()
    assert hello2["truncated"] is False and hello2["epoch"] == hello["epoch"]
    assert [e["text"] for e in replay2] == missed and users2 == ["Ani", "Budi"]
    seen += replay2
    await ani.post("setelah")
    await second.until(is_text("setelah"), seen=seen)

    ids = [e["id"] for e in seen if "id" in e]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "a gap or a duplicate across the reconnect"
    assert first.ids + second.ids == ids  # every event came with its SSE id
    # Back within the grace period: Budi never left, so nobody saw him leave and join again.
    assert people(seen) == [("join", "Ani"), ("join", "Budi")]
    await second.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_last_event_id_wins_over_the_urls_after(api: Api, streams: StreamClient) -> None:
    ani = await api.join("Ani", "menang")
    for i in range(4):
        await ani.post(f"pesan {i}")
    # An EventSource opened with ?after=1 reconnects to that URL, with the id it got since.
    stream = await streams.open(ani, after=1, headers={"Last-Event-ID": "4"})
    _, replay, _ = await stream.opening()
    assert [e["id"] for e in replay] == [5]
    await stream.close()


@pytest.mark.settings(heartbeat_interval=0.2)
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_ndjson_stream_has_the_same_items_one_per_line_and_pings(api: Api, streams: StreamClient) -> None:
    ani = await api.join("Ani", "baris")
    budi = await api.join("Budi", "baris")
    sse = await streams.open(ani, "sse", after=0)
    lines = await streams.open(budi, "ndjson", after=0)
    hello, replay, users = await lines.opening()
    assert hello["type"] == "hello" and users == ["Ani", "Budi"]
    assert people(replay) == [("join", "Ani"), ("join", "Budi")]
    await budi.post("halo dari curl")
    got = await lines.until(is_text("halo dari curl"))
    assert got["user"] == "Budi"
    # A quiet room: a ping line every heartbeat interval keeps proxies from timing the stream out.
    ping = await lines.item(pings=True)
    while ping is not None and ping["type"] != "ping":
        ping = await lines.item(pings=True)
    assert ping == {"type": "ping"}
    # The SSE reader got the same room events.
    sse_seen: list[dict] = []
    await sse.until(is_text("halo dari curl"), seen=sse_seen)
    assert [e["id"] for e in sse_seen if "id" in e][-1] == got["id"]
    await sse.close()
    await lines.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_format_query_and_accept_pick_the_format(api: Api, streams: StreamClient) -> None:
    ani = await api.join("Ani", "bentuk")
    resp = await api.request("GET", events_path("bentuk", format="xml"), token=ani.token)
    assert resp.status == 400 and resp.json["error"] == "bad_request"
    by_query = await streams.open(ani, "ndjson", format="ndjson", headers={"Accept": "text/event-stream"})
    assert (await by_query.item())["type"] == "hello"
    await by_query.close()
    # curl sends Accept: */*: ndjson
    raw = await RawStream.open(api.base_url, events_path("bentuk"), {"Authorization": f"Bearer {ani.token}",
                                                                     "Accept": "*/*"})
    assert raw.status == 200 and raw.headers["content-type"].startswith("application/x-ndjson")
    raw.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_bad_requests_get_a_json_error_before_any_stream(api: Api, streams: StreamClient) -> None:
    ani = await api.join("Ani", "salah")
    other_ani = await api.join("Ani", "salah")  # the same name, another session
    sock = await ani.ws()
    await sock.handshake()
    sse = {"Accept": "text/event-stream"}
    cases = [
        (None, events_path("salah"), {}, 401, "unauthorized"),
        ("bogus", events_path("salah"), {}, 401, "unauthorized"),
        (ani.token, events_path("salah", after="-1"), {}, 400, "invalid_cursor"),
        (ani.token, events_path("salah"), {"Last-Event-ID": "abc"}, 400, "invalid_cursor"),
        (ani.token, room_url("a" * 65, "/events"), {}, 400, "invalid_room"),
        (ani.token, events_path("salah"), {"Origin": "http://evil.example"}, 403, "forbidden"),
        (ani.token, events_path("tak pernah ada"), {}, 404, "no_such_room"),
        (other_ani.token, events_path("salah"), {}, 409, "name_taken"),
    ]
    for token, path, headers, status, code in cases:
        resp = await api.request("GET", path, token=token, headers={**sse, **headers})
        assert (resp.status, resp.json["error"]) == (status, code), (path, headers, resp.body)
        assert resp.headers["Content-Type"].startswith("application/json")
    assert await ani.users() == ["Ani"]
    sock.close()


@pytest.mark.settings(allowed_origins=["http://app.example"])
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_an_allowed_origin_may_read_the_stream_with_credentials(api: Api, streams: StreamClient) -> None:
    ani = await api.join("Ani", "asal")
    stream = await streams.open(ani, headers={"Origin": "http://app.example"})
    assert stream.response.headers["access-control-allow-origin"] == "http://app.example"
    assert stream.response.headers["access-control-allow-credentials"] == "true"
    await stream.close()


@pytest.mark.settings(presence_grace=0.3)
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_a_stream_is_present_joins_once_and_leaves_after_the_grace_period(api: Api,
                                                                                streams: StreamClient) -> None:
    ani = await api.join("Ani", "hadir")
    budi = await api.join("Budi", "hadir")
    a = await ani.ws()
    await a.handshake()
    stream = await streams.open(budi)
    await a.recv_until(is_event("join", "Budi"))
    await a.recv_until(is_presence(["Ani", "Budi"]))
    # Present for as long as it is open, however long that is (no request needed).
    extra = await streams.open(budi, "ndjson")  # a second stream of the same session: no second join
    await extra.opening()
    await extra.close()
    await ani.post("masih di sini?")
    await stream.until(is_text("masih di sini?"))
    assert await ani.users() == ["Ani", "Budi"]
    await stream.close()
    leave = await a.recv_until(is_event("leave", "Budi"), timeout=10)
    await a.recv_until(is_presence(["Ani"]))
    history = (await ani.poll(after=0, wait=0)).json["events"]
    assert people(history) == [("join", "Ani"), ("join", "Budi"), ("leave", "Budi")]
    assert history[-1]["id"] == leave["id"]
    a.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_leave_ends_the_stream_with_a_last_item_saying_so(api: Api, streams: StreamClient) -> None:
    budi = await api.join("Budi", "pamit")
    stream = await streams.open(budi, "ndjson")
    await stream.opening()
    assert (await budi.leave()).status == 200
    # Ended before the leave is announced (as a WebSocket is closed with 1000): the end is all that is left.
    assert await stream.rest() == [{"type": "end", "reason": "left", "detail": "you left the room",
                                    "reconnect": False}]


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_typing_over_http_reaches_streams_and_websockets(api: Api, streams: StreamClient) -> None:
    ani = await api.join("Ani", "ketik")
    budi = await api.join("Budi", "ketik")
    a = await ani.ws()
    await a.handshake()
    stream = await streams.open(budi)
    await stream.opening()
    resp = await api.request("POST", room_url("ketik", "/typing"), token=budi.token)
    again = await api.request("POST", room_url("ketik", "/typing"), token=budi.token)
    assert resp.status == 200 and resp.json == {"sent": True}
    assert again.json == {"sent": False}  # one notice per 2 s per user
    assert (await a.recv_until(lambda f: f["type"] == "typing"))["user"] == "Budi"
    assert (await stream.until(lambda i: i["type"] == "typing")) == {"type": "typing", "user": "Budi"}
    nobody = await api.request("POST", room_url("ketik", "/typing"))
    assert nobody.status == 401 and nobody.json["error"] == "unauthorized"
    a.close()
    await stream.close()


@needs_curl
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_curl_n_prints_events_as_they_happen(api: Api) -> None:
    ani = await api.join("Ani", "Proyek PBO")
    budi = await api.join("Budi", "Proyek PBO")
    await ani.post("sudah ada")
    curl = await curl_stream(api.base_url, events_path("Proyek PBO", after=0), budi.token)

    async def next_item() -> dict[str, Any]:
        """The next line curl printed, as JSON (pings skipped)."""
        while True:
            line = await curl_line(curl)
            assert line, f"curl exited with {await curl.wait()}"
            item = json.loads(line)
            if item["type"] != "ping":
                return item

    try:
        opening = [await next_item() for _ in range(5)]  # hello, Ani's join, her message, Budi's join, users
        assert [i["type"] for i in opening] == ["hello", "join", "message", "join", "presence"]
        for i in range(3):  # each line is printed while curl is still running: live
            await ani.post(f"baru {i}")
            item = await next_item()
            assert (item["type"], item["user"], item["text"]) == ("message", "Ani", f"baru {i}")
        assert curl.returncode is None
        await budi.leave()
        end = await next_item()
        while end["type"] != "end":
            end = await next_item()
        assert end["reason"] == "left"
        assert await asyncio.wait_for(curl.wait(), 5) == 0  # the body ended cleanly: curl exits 0
    finally:
        if curl.returncode is None:
            curl.kill()
            await curl.wait()


@pytest.mark.settings(max_backlog=20000, rate_limit=0, presence_grace=0.0, buffer_size=50000)
@pytest.mark.gen_test(timeout=60)
async def test_slow_stream_reader_is_ended_with_slow_and_resumes_from_its_cursor(api: Api,
                                                                                 streams: StreamClient) -> None:
    ani = await api.join("Ani", "deras")
    sari = await api.join("Sari", "deras")
    a = await ani.ws()
    await a.handshake()
    slow = await RawStream.open(api.base_url, events_path("deras"), {"Authorization": f"Bearer {sari.token}"},
                                rcvbuf_bytes=4096)
    opening = await slow.read_until(lambda data: b'"type":"presence"' in data)
    assert ndjson_items(opening)[0]["type"] == "hello"
    await a.recv_until(is_presence(["Ani", "Sari"]))
    # From here on Sari reads nothing, while Ani floods the room and keeps up.

    sent, left = 0, False
    pad = "x" * 1990
    while not left:
        assert sent < 20000, "the slow reader was never ended"
        await a.send({"type": "message", "text": f"{sent:08d} {pad}"})
        sent += 1
        if sent % 50 == 0:  # Ani reads everything sent so far before sending more
            while True:
                frame = await a.recv(timeout=10)
                assert frame is not None, "the reader that keeps up was closed"
                if frame["type"] == "leave" and frame["user"] == "Sari":
                    left = True
                if frame["type"] == "message" and frame["text"].startswith(f"{sent - 1:08d}"):
                    break

    # Sari's stream: what was queued for her, in order, then the last item saying why.
    data, closed = await slow.read_to_end(timeout=10)
    assert not closed  # the body ended properly (its last chunk) on a connection that stays usable
    items = ndjson_items(data)
    assert items[-1]["type"] == "end" and items[-1]["reason"] == "slow" and items[-1]["reconnect"] is True
    events = [i for i in items if "id" in i]
    assert [e["id"] for e in events] == list(range(events[0]["id"], events[0]["id"] + len(events)))
    slow.close()

    # She resumes from the last id she got: everything after it, nothing twice.
    again = await streams.open(sari, "ndjson", after=events[-1]["id"])
    hello, replay, _ = await again.opening()
    assert hello["truncated"] is False
    assert replay[0]["id"] == events[-1]["id"] + 1
    texts = [e["text"][:8] for e in events + replay if e["type"] == "message"]
    assert texts == [f"{n:08d}" for n in range(sent)]
    await again.close()
    a.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_websocket_sse_ndjson_and_long_poll_readers_see_one_order(api: Api, streams: StreamClient) -> None:
    ani = await api.join("Ani", "campur")
    budi = await api.join("Budi", "campur")
    cici = await api.join("Cici", "campur")
    a = await ani.ws()
    await a.handshake()
    sse = await streams.open(budi, after=0)
    lines = await streams.open(cici, "ndjson", after=0)
    for i in range(20):
        await (ani, budi, cici)[i % 3].post(f"urut {i}")
    ws_seen: list[dict] = []
    await a.recv_until(lambda f: ws_seen.append(f) or f.get("text") == "urut 19")
    sse_seen: list[dict] = []
    await sse.until(is_text("urut 19"), seen=sse_seen)
    ndjson_seen: list[dict] = []
    await lines.until(is_text("urut 19"), seen=ndjson_seen)
    polled = (await ani.poll(after=0, wait=0)).json["events"]

    def messages(items: list[dict]) -> list[tuple[int, str]]:
        return [(i["id"], i["text"]) for i in items if i.get("type") == "message"]
    assert messages(ws_seen) == messages(sse_seen) == messages(ndjson_seen) == messages(polled)
    assert [t for _, t in messages(polled)] == [f"urut {i}" for i in range(20)]
    a.close()
    await sse.close()
    await lines.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_a_room_whose_history_started_over_ends_its_streams_saying_so(api: Api, streams: StreamClient,
                                                                            hub: Hub) -> None:
    budi = await api.join("Budi", "ulang")
    stream = await streams.open(budi)
    await stream.opening()
    await hub.reload_room("ulang")  # what a backend does when the shared history started over
    rest = await stream.rest()
    assert rest[-1]["type"] == "end" and rest[-1]["reason"] == "history_reset" and rest[-1]["reconnect"] is True
