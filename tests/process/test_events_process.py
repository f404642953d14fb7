"""Event streams against real ``python chat.py`` processes: SIGTERM, two processes on one
redis-server, and nginx in front of them with the repo's deploy/nginx.conf."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chatclient import Api
from tests.redis_helpers import ChatServer, Nginx, RedisServer, as_user, start_servers
from tests.servers import ChatProcess
from tests.streamclient import (
    RawStream,
    StreamClient,
    curl_line,
    curl_stream,
    events_path,
    ndjson_items,
    needs_curl,
)

TIMEOUT_S = 60
Deployed = tuple[Nginx, list[ChatServer]]  # nginx, and the two processes behind it
EXIT_TIMEOUT_S = 15.0  # bounds a hang; not the server's own deadline


def is_text(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda item: item.get("type") == "message" and item.get("text") == text


@needs_curl
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_sigterm_ends_every_stream_with_a_last_item_saying_the_server_restarts(tmp_path: Path) -> None:
    server = ChatProcess(tmp_path / "data", "--presence-grace=30", log_path=tmp_path / "server.log", cwd=tmp_path)
    api = Api(server.url)
    client = StreamClient(server.url)
    curl = None
    try:
        await server.started()
        ani = await api.join("Ani", "tutup")
        budi = await api.join("Budi", "tutup")
        sse = await client.open(ani)
        await sse.opening()
        curl = await curl_stream(server.url, events_path("tutup", after=0), budi.token)
        line = b"-"
        while line and b'"type":"presence"' not in line:
            line = await curl_line(curl)
        assert line, "curl ended before the opening was complete"

        server.proc.send_signal(signal.SIGTERM)
        end = {"type": "end", "reason": "restarting",
               "detail": "the server is restarting; reconnect and resume from your cursor", "reconnect": True}
        rest = await sse.rest(timeout=EXIT_TIMEOUT_S)
        assert rest[-1] == end
        assert [i for i in rest if i["type"] == "leave"] == []  # a restart is not a leave
        lines = []
        while line := await curl_line(curl, EXIT_TIMEOUT_S):
            lines.append(line)
        assert ndjson_items(b"".join(lines))[-1] == end
        assert await asyncio.wait_for(curl.wait(), EXIT_TIMEOUT_S) == 0  # a clean end of the body
        assert await server.exited(EXIT_TIMEOUT_S) == 0, server.log_tail()
    finally:
        if curl is not None and curl.returncode is None:
            curl.kill()
            await curl.wait()
        await client.aclose()
        api.close()
        server.kill()


# -- two processes on one Redis, and nginx in front of them ------------------------------------


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def deployed(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    workdir = tmp_path_factory.mktemp("streams")
    servers = start_servers(workdir, redis.url, 2, "--presence-grace=10", "--heartbeat-interval=0.5")
    nginx = Nginx(workdir, servers).start()
    yield nginx, servers
    nginx.stop()
    for server in servers:
        server.stop()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_two_processes_on_redis_stream_one_room_and_resume_on_the_other(deployed: Deployed) -> None:
    _, (p0, p1) = deployed
    api0, api1 = Api(p0.url), Api(p1.url)
    c0, c1 = StreamClient(p0.url), StreamClient(p1.url)
    try:
        ani = await api1.join("Ani", "dua proses")
        budi = await api0.join("Budi", "dua proses")
        stream = await c0.open(budi, after=0)  # Budi reads from process 0
        _, replay, users = await stream.opening()
        assert users == ["Budi"]
        seen = list(replay)
        await ani.post("dari proses 1")  # Ani posts through process 1 (a request: she is present)
        await stream.until(lambda i: i["type"] == "join" and i["user"] == "Ani", seen=seen)  # the list's change
        await stream.until(is_text("dari proses 1"), seen=seen)
        assert await ani.users() == ["Ani", "Budi"]  # process 1 sees the stream on process 0

        await stream.close()
        missed = [f"terlewat {i}" for i in range(3)]
        for text in missed:
            await ani.post(text)
        # The reconnect lands on the other process (as behind a load balancer): same ids, same cursor.
        again = await c1.open(as_user(budi, api1), headers={"Last-Event-ID": stream.last_event_id})
        _, replay2, users2 = await again.opening()
        assert [e["text"] for e in replay2] == missed and users2 == ["Ani", "Budi"]
        seen += replay2
        await ani.post("akhir")
        await again.until(is_text("akhir"), seen=seen)
        ids = [e["id"] for e in seen if "id" in e]
        assert ids == list(range(1, len(ids) + 1)), "a gap or a duplicate across processes"
        await again.close()
    finally:
        for client in (c0, c1):
            await client.aclose()
        api0.close()
        api1.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_streams_through_nginx_arrive_live_with_heartbeats_and_resume(deployed: Deployed) -> None:
    nginx, _ = deployed
    api = Api(nginx.url)
    client = StreamClient(nginx.url)
    try:
        ani = await api.join("Ani", "lewat nginx")
        budi = await api.join("Budi", "lewat nginx")
        stream = await client.open(budi, headers={"Origin": nginx.url})  # the browser's Origin: the proxy's host
        await stream.opening()
        for i in range(4):  # round robin: the posts go to both processes; each arrives while the stream is open
            await ani.post(f"lewat {i}")
            await stream.until(is_text(f"lewat {i}"))
        await stream.close()
        # nginx passes the heartbeats on as they come (a comment every 0.5 s here), and the header
        # for buffering too: on the wire, with a reader that sees every byte.
        raw = await RawStream.open(nginx.url, events_path("lewat nginx"),
                                   {"Authorization": f"Bearer {budi.token}", "Accept": "text/event-stream"})
        assert raw.status == 200 and raw.headers["content-type"].startswith("text/event-stream")
        await raw.read_until(lambda data: b"\n: ping\n" in data, timeout=10)
        raw.close()
        await ani.post("saat putus")
        again = await client.open(budi, headers={"Last-Event-ID": str(stream.ids[-1])})
        _, replay, _ = await again.opening()
        assert [e["text"] for e in replay] == ["saat putus"]
        await again.close()
    finally:
        await client.aclose()
        api.close()


@needs_curl
@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_curl_n_through_nginx_prints_each_event_as_it_is_posted(deployed: Deployed) -> None:
    nginx, _ = deployed
    api = Api(nginx.url)
    ani = await api.join("Ani", "curl nginx")
    budi = await api.join("Budi", "curl nginx")
    curl = await curl_stream(nginx.url, events_path("curl nginx", after=0), budi.token)
    try:
        line = b"-"
        while line and b'"type":"presence"' not in line:
            line = await curl_line(curl)
        assert line, "curl ended before the opening was complete"
        for i in range(3):
            await ani.post(f"baris {i}")
            item: dict[str, Any] = {}
            while item.get("type") != "message":
                line = await curl_line(curl)
                assert line, "curl ended"
                item = ndjson_items(line)[0]
            assert item["text"] == f"baris {i}"
    finally:
        curl.kill()
        await curl.wait()
        api.close()
