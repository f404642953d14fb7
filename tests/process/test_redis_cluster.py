"""Three real server processes on three ports sharing one real redis-server.

Clients spread over the processes must see one room: the same events in the same id
order, the same people present, one name per room, one copy of a retried send, and a
long-poll client may ask a different process every time without missing anything.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.chatclient import Api, Socket, User, is_event, is_presence
from tests.redis_helpers import as_user, history, start_servers

TIMEOUT_S = 30
EVENT_TYPES = ("message", "join", "leave")


@pytest.fixture(scope="module")
def servers(redis, tmp_path_factory):
    procs = start_servers(tmp_path_factory.mktemp("cluster"), redis.url, 3)
    yield procs
    for proc in procs:
        proc.stop()


@pytest.fixture
def apis(servers, io_loop):
    clients = [Api(s.url) for s in servers]
    yield clients
    for client in clients:
        client.close()


def notice(frame: dict) -> tuple:
    return (frame["id"], frame["type"], frame["user"], frame.get("text"))


class Watcher:
    """A WebSocket client that keeps every event it has seen and the last user list."""

    def __init__(self, sock: Socket, replay: list[dict], users: list[str]) -> None:
        self.sock, self.events = sock, list(replay)

    @property
    def users(self) -> list[str] | None:
        """The user list as a client keeps it (the whole list, then each join and leave)."""
        return self.sock.users

    async def until_users(self, expected: list[str]) -> None:
        while self.users != expected:
            await self.read()

    async def until_messages(self, count: int) -> list[dict]:
        while sum(e["type"] == "message" for e in self.events) < count:
            await self.read()
        return self.events

    async def read(self) -> dict:
        frame = await self.sock.recv()
        assert frame is not None, "closed before the expected frame"
        if frame["type"] in EVENT_TYPES:
            self.events.append(frame)
        return frame


async def watch(user: User, users_expected: list[str]) -> Watcher:
    """Open a socket and read until presence shows ``users_expected``."""
    sock = await user.ws()
    _hello, replay, users = await sock.handshake()
    watcher = Watcher(sock, replay, users)
    await watcher.until_users(users_expected)
    return watcher


async def connect(user: User, users_expected: list[str]) -> tuple[Socket, list[dict]]:
    watcher = await watch(user, users_expected)
    return watcher.sock, watcher.events


async def collect(sock: Socket, seen: list[dict], messages: int) -> list[dict]:
    """Read until ``messages`` message events are in ``seen``."""
    while sum(e["type"] == "message" for e in seen) < messages:
        frame = await sock.recv()
        assert frame is not None, "closed before every message arrived"
        if frame["type"] in EVENT_TYPES:
            seen.append(frame)
    return seen


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_clients_on_three_processes_see_the_same_events_in_order_and_the_same_people(apis):
    names = ["Ani", "Budi", "Cici"]
    users = [await api.join(name, "lintas") for api, name in zip(apis, names, strict=True)]
    watchers = [await watch(user, names[:i + 1]) for i, user in enumerate(users)]
    for watcher in watchers:  # everyone learns about everyone
        await watcher.until_users(names)
    dewi = await apis[1].join("Dewi", "lintas")  # a long-poll user, polling process 1
    first = await dewi.poll(after=0, wait=0)
    assert first.status == 200
    everyone = ["Ani", "Budi", "Cici", "Dewi"]
    for watcher in watchers:
        await watcher.until_users(everyone)
    socks = [w.sock for w in watchers]
    for api in apis:
        assert await as_user(users[0], api).users() == everyone

    async def ws_sender(sock: Socket, name: str) -> None:
        for i in range(5):
            await sock.send({"type": "message", "text": f"{name} {i}", "client_id": f"{name}-{i}"})

    async def http_sender() -> None:
        for i in range(5):
            resp = await as_user(dewi, apis[i % 3]).post(f"Dewi {i}", client_id=f"Dewi-{i}")
            assert resp.status == 201

    await asyncio.gather(*(ws_sender(s, n) for s, n in zip(socks, names, strict=True)), http_sender())
    streams = [await w.until_messages(20) for w in watchers]
    stored = await history(dewi, through=streams[0][-1]["id"])
    assert [notice(e) for e in stored] == [notice(e) for e in streams[0]]
    assert [notice(e) for e in streams[1]] == [notice(e) for e in streams[0]]
    assert [notice(e) for e in streams[2]] == [notice(e) for e in streams[0]]
    assert [e["id"] for e in stored] == list(range(1, len(stored) + 1))
    assert sorted(e["text"] for e in stored if e["type"] == "message") == sorted(
        f"{n} {i}" for n in everyone for i in range(5))
    for name in everyone:  # each person's messages keep the order they were sent in
        assert [e["text"] for e in stored if e.get("user") == name and e["type"] == "message"] == [
            f"{name} {i}" for i in range(5)]
    assert [(e["type"], e["user"]) for e in stored if e["type"] != "message"] == [
        ("join", n) for n in everyone]
    for sock in socks:
        sock.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_a_long_poll_client_that_asks_another_process_every_time_misses_nothing(apis):
    poller = await apis[0].join("Pak Pos", "ganti")
    senders = [await api.join(f"Pengirim {i}", "ganti") for i, api in enumerate(apis)]
    start = await poller.poll(after=0, wait=0)
    cursor, epoch = start.json["cursor"], start.json["epoch"]
    got: list[dict] = []
    expected = {f"Pengirim {i}: {j}" for i in range(3) for j in range(10)}

    async def send(user: User) -> None:
        for j in range(10):
            assert (await user.post(f"{user.name}: {j}")).status == 201

    async def poll_round_robin() -> None:
        nonlocal cursor
        turn = 0
        while not expected <= {e.get("text") for e in got}:
            resp = await as_user(poller, apis[turn % 3]).poll(after=cursor, wait=5, epoch=epoch)
            assert resp.status == 200 and resp.json["truncated"] is False and resp.json["epoch"] == epoch
            got.extend(resp.json["events"])
            cursor = resp.json["cursor"]
            turn += 1

    await asyncio.gather(poll_round_robin(), *(send(s) for s in senders))
    ids = [e["id"] for e in got]
    assert ids == list(range(start.json["cursor"] + 1, cursor + 1))  # no gap, no duplicate
    assert {e["text"] for e in got if e["type"] == "message"} == expected


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_a_retried_send_is_stored_once_across_processes(apis):
    ani = await apis[0].join("Ani", "sekali")
    first = await ani.post("hanya sekali", client_id="retry-1")
    again = await as_user(ani, apis[1]).post("hanya sekali", client_id="retry-1")
    sock = await as_user(ani, apis[2]).ws()
    await sock.handshake()
    await sock.send({"type": "message", "text": "hanya sekali", "client_id": "retry-1"})
    ack = await sock.recv_until(lambda f: f["type"] == "ack")
    assert first.status == again.status == 201
    assert first.json["id"] == again.json["id"] == ack["id"]
    messages = [e for e in await history(ani, through=first.json["id"]) if e["type"] == "message"]
    assert [(e["id"], e["text"]) for e in messages] == [(first.json["id"], "hanya sekali")]
    sock.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_a_name_present_through_one_process_is_taken_on_the_others(apis):
    ani = await apis[0].join("Ani", "satu nama")
    budi = await apis[2].join("Budi", "satu nama")
    a, _ = await connect(ani, ["Ani"])
    b, _ = await connect(budi, ["Ani", "Budi"])
    impostor = await apis[1].join("aNi", "ruang lain")
    clash = await impostor.poll(after=0, wait=0, room="satu nama")
    assert clash.status == 409 and clash.json["error"] == "name_taken"
    at_join = await apis[2].request("POST", "/join", json_body={"name": "ANI", "room": "satu nama"},
                                    headers={"Accept": "application/json"})
    assert at_join.status == 409 and at_join.json["error"] == "name_taken"
    assert await as_user(budi, apis[1]).users() == ["Ani", "Budi"]
    a.close()
    b.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_leave_through_another_process_closes_the_sockets_and_is_announced_once(apis):
    ani = await apis[0].join("Ani", "pamit")
    budi = await apis[1].join("Budi", "pamit")
    a, _ = await connect(ani, ["Ani"])
    b, _ = await connect(budi, ["Ani", "Budi"])
    await a.recv_until(is_presence(["Ani", "Budi"]))
    resp = await as_user(budi, apis[2]).leave()  # pressed Leave on a page served by process 2
    assert resp.status == 200
    assert await b.closed() == 1000
    leave = await a.recv_until(lambda f: f["type"] in EVENT_TYPES)
    assert (leave["type"], leave["user"]) == ("leave", "Budi")
    await a.recv_until(is_presence(["Ani"]))
    for api in apis:
        assert await as_user(ani, api).users() == ["Ani"]
    a.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_typing_notices_reach_members_on_other_processes(apis):
    ani = await apis[0].join("Ani", "ketik lintas")
    budi = await apis[1].join("Budi", "ketik lintas")
    a, _ = await connect(ani, ["Ani"])
    b, _ = await connect(budi, ["Ani", "Budi"])
    await a.recv_until(is_presence(["Ani", "Budi"]))
    await b.send({"type": "typing"})
    assert await a.recv_until(lambda f: f["type"] == "typing") == {"type": "typing", "user": "Budi"}
    a.close()
    b.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_a_dropped_subscription_is_caught_up_from_the_stream(apis, redis):
    ani = await apis[0].join("Ani", "putus")
    budi = await apis[1].join("Budi", "putus")
    a, seen = await connect(ani, ["Ani"])
    hello_epoch = (await ani.poll(after=0, wait=0)).json["epoch"]
    # Redis drops every subscriber connection; process 1 goes on storing what Budi sends.
    assert redis.cli("CLIENT", "KILL", "TYPE", "pubsub") != "0"
    for i in range(5):
        assert (await budi.post(f"selama putus {i}")).status == 201
    await collect(a, seen, 5)
    await budi.post("sesudahnya")
    after = await a.recv_until(is_event("message", "Budi"))
    assert after["text"] == "sesudahnya"
    texts = [e["text"] for e in seen if e["type"] == "message"]
    assert texts == [f"selama putus {i}" for i in range(5)]
    ids = [e["id"] for e in seen] + [after["id"]]
    assert ids == list(range(1, len(ids) + 1))
    again = await ani.poll(after=0, wait=0)
    assert again.json["epoch"] == hello_epoch and again.json["truncated"] is False
    a.close()


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_every_process_gives_a_room_the_same_epoch(apis):
    ani = await apis[0].join("Ani", "zaman")
    await ani.post("halo")
    answers = [await as_user(ani, api).poll(after=0, wait=0) for api in apis]
    assert len({r.json["epoch"] for r in answers}) == 1
    assert [e["text"] for e in answers[-1].json["events"] if e["type"] == "message"] == ["halo"]


@pytest.mark.gen_test(timeout=20)
async def test_users_and_name_clash_on_a_process_that_never_held_the_room(servers, io_loop):
    """A process with no client in a room still answers for it from Redis."""
    first, second = Api(servers[0].url), Api(servers[1].url)
    try:
        ani = await first.join("Ani", "cold room")
        sock = await ani.ws()
        _hello, _events, users = await sock.handshake()
        assert users == ["Ani"]

        # The second process has no client in this room: it must still ask Redis.
        budi = await second.join("Budi", "cold room")
        assert await budi.users() == ["Ani"]
        clash = await second.request("POST", "/join", json_body={"name": "ANI", "room": "cold room"},
                                     headers={"Accept": "application/json"})
        assert clash.status == 409, clash.body
        assert clash.json["error"] == "name_taken"
        sock.close()
    finally:
        first.close()
        second.close()
