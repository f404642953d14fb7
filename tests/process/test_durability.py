"""Acknowledged means durable: the real server in a subprocess on a real SQLite file.

The server is killed with SIGKILL while clients send, restarted on the same data
dir, and every acknowledged event must be there once with its id; clients resume
across the restart with no gap and no duplicate.  A read-only or full database
answers senders with ``store_error`` and never an ack, while reads go on.  The locked
database and concurrent retries, with the in-process server, are in tests/http/test_durability.py.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sqlite3
from collections import Counter
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError

from backends.sqlite.schema import MIGRATIONS
from tests.chatclient import Api, Response, Socket, User, as_user, room_url
from tests.servers import ChatProcess

SECRET = "durability-test-secret"
ROOM = "Proyek PBO"
# Root writes to 0444 files anyway (CAP_DAC_OVERRIDE): without that capability it cannot.
ROOT_IGNORES_FILE_MODES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


def file_size_limit(max_bytes: int):
    """For ``preexec_fn``: in the child, writes past ``max_bytes`` fail as on a full disk."""
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return limit


@pytest.fixture
def servers(tmp_path):
    """``servers(*args)``: a ``python chat.py`` on SQLite in the test's data dir (killed at the end)."""
    started: list[ChatProcess] = []

    def make(*args: str) -> ChatProcess:
        server = ChatProcess(tmp_path / "data", "--store=sqlite", f"--cookie-secret={SECRET}", "--rate-limit=0",
                             "--presence-grace=0.3", *args, log_path=tmp_path / f"server{len(started)}.log")
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()


async def read_history(user: User, epoch: str | None = None) -> list[dict[str, Any]]:
    """Every event from id 1, by long-poll, as a client following the room would."""
    events: list[dict[str, Any]] = []
    cursor = 0
    while True:
        resp = await user.poll(after=cursor, wait=0, epoch=epoch)
        assert resp.status == 200, resp.body
        assert resp.json["truncated"] is False
        if not resp.json["events"]:
            return events
        events.extend(resp.json["events"])
        cursor = resp.json["cursor"]


async def read_pages(user: User) -> list[dict[str, Any]]:
    """Every event, walking back with ``before=`` (which, unlike a long-poll, joins no one)."""
    events: list[dict[str, Any]] = []
    before = 10**9
    while True:
        resp = await user.poll(before=before, limit=200)
        assert resp.status == 200, resp.body
        assert resp.json["truncated"] is False
        events[:0] = resp.json["events"]
        if not resp.json["has_more"]:
            return events
        before = resp.json["before"]


async def post_with_key(user: User, text: str, key: str) -> Response:
    """POST a message with its exactly-once key in the ``Idempotency-Key`` header."""
    return await user.api.request("POST", room_url(user.room, "/messages"), token=user.token,
                                  json_body={"text": text}, headers={"Idempotency-Key": key})


async def wait_ack(sock: Socket, client_id: str) -> dict[str, Any] | None:
    """The ack (or error) for ``client_id``; None when the connection went away."""
    while True:
        frame = await sock.recv(timeout=10)
        if frame is None:
            return None
        if frame.get("client_id") == client_id and frame["type"] in ("ack", "error"):
            return frame


# -- kill -9 ------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=90)
async def test_kill_9_loses_no_acknowledged_event_and_clients_resume(servers):
    server = servers()
    await server.started()
    api = Api(server.url)
    try:
        # A WebSocket follower and a long-poll follower, there from the first event.
        wati = await api.join("Wati", ROOM)
        pia = await api.join("Pia", ROOM)
        follower = await wati.ws(after=0)
        hello, replay, _ = await follower.handshake()
        epoch = hello["epoch"]
        ws_seen = [e["id"] for e in replay]
        ws_progress = asyncio.Event()
        poll_seen: list[int] = []
        poll_cursor = 0

        async def follow_ws() -> None:
            while (frame := await follower.recv(timeout=30)) is not None:
                if "id" in frame and frame["type"] in ("message", "join", "leave"):
                    ws_seen.append(frame["id"])
                    ws_progress.set()

        async def follow_poll() -> None:
            nonlocal poll_cursor
            while True:
                try:
                    resp = await pia.poll(after=poll_cursor, wait=10, epoch=epoch)
                except (OSError, HTTPClientError):
                    return  # the server is gone
                if resp.status != 200:
                    return  # the server is gone
                assert resp.json["truncated"] is False
                poll_seen.extend(e["id"] for e in resp.json["events"])
                poll_cursor = resp.json["cursor"]

        acked: dict[str, int] = {}
        sent_by: dict[str, str] = {}  # client_id -> transport it was first sent over
        enough = asyncio.Event()
        target_acks = 80

        def record(client_id: str, event_id: int) -> None:
            acked[client_id] = event_id
            if len(acked) >= target_acks:
                enough.set()

        async def send_ws(user: User) -> None:
            sock = await user.ws()
            await sock.handshake()
            for k in range(100_000):
                cid = f"{user.name}-{k}"
                sent_by[cid] = "ws"
                try:
                    await sock.send({"type": "message", "text": f"pesan {cid}", "client_id": cid})
                except WebSocketClosedError:
                    return
                frame = await wait_ack(sock, cid)
                if frame is None:
                    return  # killed before the ack: this one is in flight
                assert frame["type"] == "ack", frame
                record(cid, frame["id"])

        async def send_http(user: User) -> None:
            for k in range(100_000):
                cid = f"{user.name}-{k}"
                sent_by[cid] = "http"
                try:
                    resp = await user.post(f"pesan {cid}", client_id=cid)
                except (OSError, HTTPClientError):
                    return  # killed before the answer: in flight
                if resp.status == 599:
                    return  # killed before the answer: in flight
                assert resp.status == 201, resp.body
                record(cid, resp.json["id"])

        ws_users = [await api.join(n, ROOM) for n in ("Wawan", "Wulan")]
        http_users = [await api.join(n, ROOM) for n in ("Hadi", "Hana")]
        tasks = [asyncio.ensure_future(t) for t in (
            follow_ws(), follow_poll(), *(send_ws(u) for u in ws_users), *(send_http(u) for u in http_users))]
        await asyncio.wait_for(enough.wait(), 30)
        server.kill()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        assert len(acked) >= target_acks
        ws_before, poll_before = list(ws_seen), list(poll_seen)

        await server.started()  # same data dir, same port

        # Both followers resume from their cursors: same epoch, nothing missed, nothing twice.
        follower = await wati.ws(after=ws_seen[-1], epoch=epoch)
        hello, replay, _ = await follower.handshake()
        assert hello["epoch"] == epoch and hello["truncated"] is False
        ws_seen.extend(e["id"] for e in replay)
        resumed = asyncio.ensure_future(follow_ws())

        # Every send is retried once over the other transport, all at once.
        users = {u.name: u for u in [*ws_users, *http_users]}
        sockets = {name: await u.ws() for name, u in users.items()}
        for sock in sockets.values():
            await sock.handshake()

        async def retry(cid: str, transport: str) -> int:
            name, k = cid.rsplit("-", 1)
            user = users[name]
            if transport == "http":  # the key as a header or in the body, alternately
                resp = await post_with_key(user, f"pesan {cid}", cid) \
                    if int(k) % 2 else await user.post(f"pesan {cid}", client_id=cid)
                assert resp.status == 201, resp.body
                return resp.json["id"]
            sock = sockets[user.name]
            await sock.send({"type": "message", "text": f"pesan {cid}", "client_id": cid})
            frame = await wait_ack(sock, cid)
            assert frame is not None and frame["type"] == "ack", frame
            return frame["id"]

        other = {"ws": "http", "http": "ws"}
        # One WebSocket per user acks in order, so each user's retries over it go one at a time.
        async def retry_all(cids: list[str], transport: str) -> list[int]:
            return [await retry(cid, transport) for cid in cids]
        by_user: dict[tuple[str, str], list[str]] = {}
        for cid, transport in sent_by.items():
            by_user.setdefault((cid.rsplit("-", 1)[0], other[transport]), []).append(cid)
        results = await asyncio.gather(*(retry_all(cids, t) for (_, t), cids in by_user.items()))
        retried = {cid: eid for cids, ids in zip(by_user.values(), results, strict=True)
                   for cid, eid in zip(cids, ids, strict=True)}
        for cid, event_id in acked.items():
            assert retried[cid] == event_id, f"{cid} was acked as {event_id}, retried as {retried[cid]}"
        for cid in sent_by:  # a second retry, over the first transport, changes nothing
            assert await retry(cid, sent_by[cid]) == retried[cid]

        history = await read_history(wati, epoch)
        ids = [e["id"] for e in history]
        assert ids == list(range(1, len(ids) + 1))  # contiguous, each once
        texts = Counter(e["text"] for e in history if e["type"] == "message")
        assert texts == Counter(f"pesan {cid}" for cid in sent_by)  # every send exactly once
        by_text = {e["text"]: e["id"] for e in history if e["type"] == "message"}
        assert all(by_text[f"pesan {cid}"] == eid for cid, eid in acked.items())

        # The long-poll follower picks up where it was, and both followers saw every id once.
        newest = ids[-1]
        while poll_cursor < newest:
            resp = await pia.poll(after=poll_cursor, wait=10, epoch=epoch)
            assert resp.status == 200 and resp.json["truncated"] is False, resp.body
            poll_seen.extend(e["id"] for e in resp.json["events"])
            poll_cursor = resp.json["cursor"]
        assert poll_seen[:len(poll_before)] == poll_before
        assert poll_seen == list(range(1, len(poll_seen) + 1))

        while ws_seen[-1] < newest:
            ws_progress.clear()
            await asyncio.wait_for(ws_progress.wait(), 10)
        assert ws_seen[:len(ws_before)] == ws_before
        assert ws_seen == list(range(1, len(ws_seen) + 1))
        for sock in [follower, *sockets.values()]:
            sock.close()
        resumed.cancel()
    finally:
        api.close()
        server.stop()


# -- failures: read-only, full ----------------------------------------------------------------


async def seed(server: ChatProcess, count: int) -> tuple[User, str, list[dict[str, Any]]]:
    """Start ``server``, post ``count`` messages, stop it cleanly; (the poster, epoch, events)."""
    await server.started()
    api = Api(server.url)
    try:
        user = await api.join("Ani", ROOM)
        for i in range(count):
            resp = await user.post(f"lama {i}", client_id=f"lama-{i}")
            assert resp.status == 201, resp.body
        page = await user.poll(before=10**9, limit=200)
        assert page.status == 200
        assert [e["type"] for e in page.json["events"]] == ["join"] + ["message"] * count
        return user, page.json["epoch"], page.json["events"]
    finally:
        api.close()
        server.stop()


async def assert_refused_but_readable(api: Api, user: User, epoch: str, kept: list[dict[str, Any]],
                                      reason: str) -> list[dict[str, Any]]:
    """Sends fail with store_error and no ack; history, long-poll, the WebSocket and /rooms still work.

    ``user`` comes back within the grace period after the restart: still present, not announced
    again.  Returns the history as then stored: exactly ``kept``.
    """
    ani = as_user(user, api)
    resp = await ani.post("tidak tersimpan", client_id="baru-1")
    assert resp.status == 503, resp.body
    assert resp.json["error"] == "store_error" and reason in resp.json["detail"], resp.json
    sock = await ani.ws(after=0, epoch=epoch)
    hello, replay, users = await sock.handshake()
    assert hello["epoch"] == epoch and hello["truncated"] is False
    assert replay == kept  # nothing new stored, and no second join of Ani
    assert users == ["Ani"]  # present since before the restart
    await sock.send({"type": "message", "text": "juga tidak", "client_id": "baru-2"})
    frame = await sock.recv()
    assert frame is not None and frame["type"] == "error", frame  # not an ack
    assert frame["error"] == "store_error" and frame["client_id"] == "baru-2" and reason in frame["detail"]
    assert await read_pages(ani) == replay
    assert (await ani.poll(after=0, wait=0)).json["events"] == replay[-50:]
    rooms = (await api.request("GET", "/rooms")).json["rooms"]
    assert [r["room"] for r in rooms] == [ROOM]
    assert (await api.request("GET", "/healthz")).status == 200
    sock.close()
    return replay


@pytest.mark.gen_test(timeout=60)
async def test_read_only_database_refuses_sends_and_keeps_serving_reads(servers):
    server = servers("--presence-grace=60")  # Ani comes back after each restart: still present
    seeded, epoch, kept = await seed(server, 5)
    db = server.data_dir / "obrolan.sqlite3"
    db.chmod(0o444)  # the folder stays writable: SQLite may still create its -wal/-shm files
    await server.started(wrapper=ROOT_IGNORES_FILE_MODES)
    api = Api(server.url)
    try:
        await assert_refused_but_readable(api, seeded, epoch, kept, "read-only")
    finally:
        api.close()
        server.stop()
    db.chmod(0o644)
    await server.started()  # writable again: nothing false was stored, ids go on
    api = Api(server.url)
    try:
        ani = as_user(seeded, api)
        resp = await ani.post("tersimpan", client_id="baru-1")
        assert resp.status == 201 and resp.json["id"] == kept[-1]["id"] + 1
        assert [e["id"] for e in await read_pages(ani)] == list(range(1, resp.json["id"] + 1))
    finally:
        api.close()
        server.stop()


@pytest.mark.gen_test(timeout=60)
async def test_full_disk_refuses_sends_without_false_acks(servers):
    server = servers("--presence-grace=60")  # Ani comes back after each restart: still present
    seeded, epoch, kept = await seed(server, 3)
    # Every file the server writes may grow to 64 KiB, then writes fail as on a full disk
    # (the WAL reaches that after a few dozen commits).  The log would count too: no log.
    await server.started(preexec_fn=file_size_limit(64 * 1024), log=False)
    api = Api(server.url)
    acked: list[dict[str, Any]] = []
    try:
        ani = as_user(seeded, api)  # back within the grace period: still present, no new join
        # Long messages until one does not fit, then short ones until not even those do.
        for size in (1500, 1):
            for i in range(2000):
                resp = await ani.post("x" * size + f" {i}", client_id=f"penuh-{size}-{i}")
                if resp.status != 201:
                    break
                acked.append(resp.json)
            assert resp.status == 503, "the disk never filled up"
            assert resp.json["error"] == "store_error" and "disk" in resp.json["detail"], resp.json
        stored = await assert_refused_but_readable(api, seeded, epoch, kept + acked, "disk")
    finally:
        api.close()
        server.kill()
    await server.started()  # room again: every acknowledged event is there, and nothing else
    api = Api(server.url)
    try:
        ani = as_user(seeded, api)
        assert await read_pages(ani) == stored
        resp = await ani.post("lega", client_id="baru-2")
        assert resp.status == 201 and resp.json["id"] == stored[-1]["id"] + 1
    finally:
        api.close()
        server.stop()


# -- a database it cannot use ------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_newer_database_stops_the_server_at_start(tmp_path, servers):
    """The server says so and exits, rather than serving without its history (the store's own
    refusal of newer and foreign files is in tests/unit/test_sqlite_schema.py)."""
    newer = tmp_path / "newer.sqlite3"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    server = servers(f"--store=sqlite:{newer}")
    with pytest.raises(AssertionError, match=r"cannot start: .*schema version"):
        await server.started()
    assert server.proc is not None and server.proc.returncode == 1
