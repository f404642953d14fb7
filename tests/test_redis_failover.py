"""Failures of a scaled-out deployment, with real processes: a server killed with SIGKILL,
Redis unreachable, Redis restarted mid-traffic, a server restarted, Redis losing its data.

"Restart" for Redis means the crash of a Redis that persists what it acknowledges: the
fixture runs it with ``--appendonly yes --appendfsync always`` (every write is in the
append-only file, fsynced, before Redis answers), kills it with SIGKILL and starts it
again on the same data directory.  A Redis without persistence loses everything when it
restarts; that case is the last test: the room starts over under a new epoch and every
client is told ("truncated") instead of silently missing history.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.httpclient import HTTPClientError
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError

from tests.chatclient import Api, Socket, User, is_event, is_presence
from tests.redis_helpers import RedisServer, as_user, history, start_servers

TIMEOUT_S = 40
RETRY_BACKOFF_S = 0.02  # how long a client waits before re-sending an unacknowledged message
RECOVERY_DEADLINE_S = 15.0
EVENT_TYPES = ("message", "join", "leave")


async def next_event(sock: Socket, timeout: float = 5.0) -> dict:
    return await sock.recv_until(lambda f: f["type"] in EVENT_TYPES, timeout)


# -- a server process killed -------------------------------------------------------------------


@pytest.fixture
def trio(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    servers = start_servers(tmp_path, redis.url, 3)
    yield redis, servers
    for server in servers:
        server.stop()
    redis.stop()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_sigkill_a_process_and_its_clients_resume_on_another_with_no_gap_and_no_duplicate(trio):
    _redis, servers = trio
    apis = [Api(s.url) for s in servers]
    wati = await apis[0].join("Wati", "tahan")
    vino = await apis[2].join("Vino", "tahan")  # reconnects elsewhere
    vivi = await apis[2].join("Vivi", "tahan")  # does not come back
    sari = await apis[1].join("Sari", "tahan")  # sends over HTTP, to processes 0 and 1
    w = await wati.ws()
    await w.handshake()
    v = await vino.ws()
    _, vino_events, _ = await v.handshake()
    vv = await vivi.ws()
    await vv.handshake()
    await w.recv_until(is_presence(["Vino", "Vivi", "Wati"]))
    total = 40

    async def send() -> None:
        for i in range(total):
            resp = await as_user(sari, apis[i % 2]).post(f"pesan {i}")
            assert resp.status == 201

    async def kill_after(count: int) -> None:
        while sum(e["type"] == "message" for e in vino_events) < count:
            frame = await next_event(v)
            vino_events.append(frame)
        servers[2].kill()  # SIGKILL: no goodbye, its clients just lose the connection

    await asyncio.gather(send(), kill_after(10))
    await v.closed()  # the connection drops (frames still in flight are lost with it)
    last = vino_events[-1]
    hello = (await apis[0].request("GET", "/rooms/tahan/messages?after=0&wait=0", token=vino.token)).json
    v2 = await as_user(vino, apis[0]).ws(after=last["id"], epoch=hello["epoch"])
    hello2, replay, _ = await v2.handshake()
    assert hello2["truncated"] is False and hello2["epoch"] == hello["epoch"]
    vino_events += replay
    while sum(e["type"] == "message" for e in vino_events) < total:
        vino_events.append(await next_event(v2))
    ids = [e["id"] for e in vino_events]
    assert ids == list(range(1, ids[-1] + 1))  # across the kill: no gap, no duplicate
    assert [e["text"] for e in vino_events if e["type"] == "message"] == [f"pesan {i}" for i in range(total)]

    # Vivi did not come back: she leaves within grace + expiry, announced once; Vino does not.
    deadline_s = 0.3 + 1.0 + 3.0  # --presence-grace + --presence-expiry + slack for a busy machine
    leave = await w.recv_until(is_event("leave", "Vivi"), timeout=deadline_s)
    marker = await as_user(sari, apis[1]).post("penanda")
    await w.recv_until(lambda f: f.get("type") == "message" and f.get("text") == "penanda")
    # Sari only posts: present for the grace period after each post, then she leaves
    await w.recv_until(is_presence(["Vino", "Wati"]), timeout=deadline_s)
    stored = await history(as_user(wati, apis[1]), through=marker.json["id"])
    people = [(e["type"], e["user"]) for e in stored if e["type"] != "message"]
    assert people.count(("leave", "Vivi")) == 1 and ("leave", "Vino") not in people
    assert people.count(("join", "Vino")) == 1
    assert leave["id"] in [e["id"] for e in stored]
    assert await as_user(wati, apis[1]).users() == ["Vino", "Wati"]
    for sock in (w, v2):
        sock.close()
    for api in apis:
        api.close()


# -- Redis down, restarted, and a server restarted ------------------------------------------------


@pytest.fixture(scope="module")
def duo(tmp_path_factory):
    redis = RedisServer(tmp_path_factory.mktemp("redis"), persistent=True).start()
    # A long grace: the HTTP posters stay present across the outages these tests make.
    servers = start_servers(tmp_path_factory.mktemp("duo"), redis.url, 2, "--presence-grace=30")
    yield redis, servers
    for server in servers:
        server.stop()
    redis.stop()


async def post_until_accepted(user: User, text: str, client_id: str) -> dict:
    """What a client does while the server answers 503: retry the same send until it is stored."""
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while True:
        resp = await user.post(text, client_id=client_id)
        if resp.status == 201:
            return resp.json
        assert resp.status == 503 and resp.json["error"] == "unavailable", resp.body
        assert time.monotonic() < deadline, "the server did not recover"
        await asyncio.sleep(RETRY_BACKOFF_S)


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_redis_unreachable_refuses_sends_keeps_serving_reads_and_recovers_by_itself(duo):
    redis, servers = duo
    apis = [Api(s.url) for s in servers]
    ani = await apis[0].join("Ani", "mati lampu")
    budi = await apis[1].join("Budi", "mati lampu")
    a = await ani.ws()
    await a.handshake()
    first = await budi.post("sebelum")
    await a.recv_until(is_event("message", "Budi"))
    redis.kill()
    try:
        refused = await budi.post("selama mati", client_id="b-1")
        assert refused.status == 503 and refused.json["error"] == "unavailable"
        await a.send({"type": "message", "text": "selama mati", "client_id": "a-1"})
        error = await a.recv_until(lambda f: f.get("client_id") == "a-1")
        assert error["type"] == "error" and error["error"] == "unavailable"  # an error, not an ack
        reads = await ani.poll(after=0, wait=0)  # what the process holds is still served
        assert reads.status == 200 and [e["text"] for e in reads.json["events"] if e["type"] == "message"] == [
            "sebelum"]
        assert (await apis[0].request("GET", "/healthz")).status == 200
        # A room process 0 does not hold yet: the handshake is refused, try again later (not 409)
        with pytest.raises(HTTPClientError) as elsewhere:
            await ani.ws(room="belum dibuka")
        assert elsewhere.value.code == 503 and elsewhere.value.response is not None
        assert json.loads(elsewhere.value.response.body)["error"] == "unavailable"
    finally:
        redis.start()
    stored = await post_until_accepted(budi, "selama mati", "b-1")
    assert stored["id"] == first.json["id"] + 1  # the refused attempts took no id
    got = await a.recv_until(is_event("message", "Budi"))  # process 0 is subscribed again
    assert (got["id"], got["text"]) == (stored["id"], "selama mati")
    await a.send({"type": "message", "text": "selama mati", "client_id": "a-1"})
    ack = await a.recv_until(lambda f: f.get("client_id") == "a-1")
    # The next id: the outage made nobody leave or re-join, and the refused send took no id.
    assert ack == {"type": "ack", "client_id": "a-1", "id": stored["id"] + 1}
    a.close()
    for api in apis:
        api.close()


class Progress:
    """What the senders have seen so far, as events the test can wait on."""

    def __init__(self, halfway: int) -> None:
        self.acks = 0
        self.halfway = asyncio.Event()
        self.refused = asyncio.Event()
        self._halfway_at = halfway

    def acked(self) -> None:
        self.acks += 1
        if self.acks >= self._halfway_at:
            self.halfway.set()


class Sender:
    """A client that sends ``count`` messages with client_ids and re-sends each until acknowledged."""

    def __init__(self, user: User, apis: list[Api], count: int, ws: bool) -> None:
        self.user, self.apis, self.count, self.ws = user, apis, count, ws
        self.acked: dict[str, tuple[int, str]] = {}  # client_id -> (id, text)
        self.refused = 0
        self.sock: Socket | None = None

    async def run(self, progress: Progress) -> None:
        for i in range(self.count):
            client_id, text = f"{self.user.name}-{i}", f"{self.user.name} {i}"
            while client_id not in self.acked:
                got = await (self._ws_send(client_id, text) if self.ws else self._http_send(i, client_id, text))
                if got is None:
                    self.refused += 1
                    progress.refused.set()
                    await asyncio.sleep(RETRY_BACKOFF_S)  # the client's back-off before it re-sends
                else:
                    self.acked[client_id] = (got, text)
                    progress.acked()

    async def _http_send(self, i: int, client_id: str, text: str) -> int | None:
        resp = await as_user(self.user, self.apis[i % len(self.apis)]).post(text, client_id=client_id)
        if resp.status == 201:
            return resp.json["id"]
        # Refused while Redis is down ("unavailable": nothing stored), or sent as it died and never
        # answered ("outcome_unknown": maybe stored): either way the client sends it again with the
        # same client_id, and the history below must hold it exactly once.
        assert resp.status == 503 and resp.json["error"] in ("unavailable", "outcome_unknown"), resp.body
        return None

    async def _ws_send(self, client_id: str, text: str) -> int | None:
        try:
            if self.sock is None:
                self.sock = await self.user.ws()
                await self.sock.handshake()
            await self.sock.send({"type": "message", "text": text, "client_id": client_id})
            frame = await self.sock.recv_until(lambda f: f.get("client_id") == client_id)
        except (AssertionError, StreamClosedError, WebSocketClosedError):
            self.sock = None  # closed: reconnect and send again
            return None
        if frame["type"] == "ack":
            return frame["id"]
        assert frame["error"] in ("unavailable", "outcome_unknown"), frame  # as over HTTP, above
        return None


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_restarting_redis_mid_traffic_loses_no_acknowledged_event(duo):
    redis, servers = duo
    apis = [Api(s.url) for s in servers]
    room = "restart"
    users = [await apis[i % 2].join(name, room) for i, name in enumerate(["Ani", "Budi", "Cici", "Dewi"])]
    epoch = (await users[0].poll(after=0, wait=0)).json["epoch"]
    senders = [Sender(u, apis, 15, ws=(u.name != "Dewi")) for u in users]
    progress = Progress(halfway=15)

    async def restart_midway() -> None:
        await asyncio.wait_for(progress.halfway.wait(), 10)
        redis.kill()  # crash: SIGKILL
        await asyncio.wait_for(progress.refused.wait(), 10)  # a send was refused while it was down
        await asyncio.get_running_loop().run_in_executor(None, redis.start)

    await asyncio.gather(restart_midway(), *(s.run(progress) for s in senders))
    assert sum(s.refused for s in senders) > 0
    stored = await history(users[0], through=max(i for s in senders for i, _ in s.acked.values()))
    by_id = {e["id"]: e for e in stored}
    assert sorted(by_id) == list(range(1, len(stored) + 1))  # contiguous, each id once
    for sender in senders:
        for _client_id, (event_id, text) in sender.acked.items():
            assert by_id[event_id]["text"] == text and by_id[event_id]["user"] == sender.user.name
    texts = [e["text"] for e in stored if e["type"] == "message"]
    assert len(texts) == len(set(texts)) == 4 * 15  # every message once, retries stored nothing
    assert (await users[0].poll(after=0, wait=0)).json["epoch"] == epoch  # Redis kept the room
    for sender in senders:
        if sender.sock is not None:
            sender.sock.close()
    for api in apis:
        api.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_a_restarted_process_keeps_the_epoch_and_ids_continue(duo):
    _redis, servers = duo
    apis = [Api(s.url) for s in servers]
    ani = await apis[0].join("Ani", "bangun lagi")
    sent = await ani.post("sebelum restart")
    before = (await ani.poll(after=0, wait=0)).json
    servers[0].kill()
    servers[0].start()
    # her post made Ani present: her join came first, then the message
    assert [e["type"] for e in before["events"]] == ["join", "message"] and before["cursor"] == sent.json["id"]
    sock = await ani.ws(after=before["cursor"], epoch=before["epoch"])
    hello, replay, _ = await sock.handshake()
    assert hello["epoch"] == before["epoch"] and hello["truncated"] is False and replay == []
    after = await ani.post("sesudah restart")
    assert after.json["id"] == before["cursor"] + 1
    got = await sock.recv_until(is_event("message", "Ani"))
    assert got["id"] == after.json["id"]
    sock.close()
    for api in apis:
        api.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_when_redis_loses_a_room_it_starts_over_under_a_new_epoch_and_clients_are_told(duo):
    redis, servers = duo
    apis = [Api(s.url) for s in servers]
    ani = await apis[0].join("Ani", "hilang")
    budi = await apis[1].join("Budi", "hilang")
    a = await ani.ws()
    await a.handshake()
    for i in range(3):
        await budi.post(f"lama {i}")
    old = (await ani.poll(after=0, wait=0)).json
    await a.recv_until(lambda f: f.get("text") == "lama 2")
    redis.cli("FLUSHALL")  # everything Redis held is gone
    fresh = await budi.post("baru")
    assert fresh.status == 201
    assert await a.closed() == 1012  # "resume from your cursor"
    again = await ani.ws(after=old["cursor"], epoch=old["epoch"])
    hello, replay, users = await again.handshake()
    assert hello["truncated"] is True and hello["epoch"] != old["epoch"]
    assert "baru" in [e.get("text") for e in replay]
    if users != ["Ani", "Budi"]:  # presence was lost too: the lease renewals put Ani and Budi back
        await again.recv_until(is_presence(["Ani", "Budi"]))
    polled = await as_user(ani, apis[1]).poll(after=old["cursor"], epoch=old["epoch"], wait=0)
    assert polled.json["truncated"] is True and polled.json["epoch"] == hello["epoch"]
    again.close()
    for api in apis:
        api.close()
