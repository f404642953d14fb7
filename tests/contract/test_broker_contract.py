"""The presence and fan-out contract, run against every backend: this process alone
(the default) and Redis (``--redis-url``, with a real redis-server).

Whatever the backend, a user sees the same thing: one join when they first connect,
one leave after the grace period or at once on Leave, no join/leave on a reload, the
409 on a name in use, typing notices that are never stored, retries never duplicated.
The cross-process promises of the Redis backend are in tests/process/test_redis_*.py.
"""

from __future__ import annotations

import dataclasses

import pytest

from chat import Settings
from tests.chatclient import is_event, is_presence

BACKENDS = ["local", "redis"]


@pytest.fixture(params=BACKENDS, autouse=True)
def backend(request) -> str:
    # Autouse, so every test runs once per backend (the app is requested dynamically).
    return request.param


@pytest.fixture
def settings(request, tmp_path, backend) -> Settings:
    base = Settings(data_dir=str(tmp_path / "data"), store="memory", cookie_secret="test-secret",
                    presence_grace=0.3, presence_expiry=1.0)
    if backend == "redis":
        redis = request.getfixturevalue("contract_redis")
        redis.cli("FLUSHALL")
        base.redis_url = redis.url
    marker = request.node.get_closest_marker("settings")
    return dataclasses.replace(base, **marker.kwargs) if marker else base


def is_notice(frame: dict) -> bool:
    return frame.get("type") in ("message", "join", "leave")


@pytest.mark.gen_test
async def test_join_once_then_leave_once_after_the_grace(api):
    ani = await api.join("Ani", "aula")
    budi = await api.join("Budi", "aula")
    a = await ani.ws()
    _, replay, users = await a.handshake()
    assert [(e["type"], e["user"]) for e in replay] == [("join", "Ani")] and users == ["Ani"]
    b = await budi.ws()
    await b.handshake()
    join = await a.recv_until(is_notice)
    assert (join["type"], join["user"], join["id"]) == ("join", "Budi", 2)
    assert a.users == ["Ani", "Budi"] and a.lists == 1  # the event is the change: no list
    assert await budi.users() == ["Ani", "Budi"]
    b.close()
    leave = await a.recv_until(is_notice)
    assert (leave["type"], leave["user"], leave["id"]) == ("leave", "Budi", 3)
    assert a.users == ["Ani"] and a.lists == 1  # the event is the change: no list
    await ani.post("masih di sini")
    nxt = await a.recv_until(is_notice)  # no second leave before it
    assert (nxt["type"], nxt["id"]) == ("message", 4)
    assert await ani.users() == ["Ani"]


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_a_reload_within_the_grace_announces_nothing(api):
    ani = await api.join("Ani", "muat")
    budi = await api.join("Budi", "muat")
    a = await ani.ws()
    await a.handshake()
    b = await budi.ws()
    await b.handshake()
    join = await a.recv_until(is_event("join", "Budi"))
    b.close()
    await b.closed()
    b2 = await budi.ws(after=join["id"])
    _, replay, users = await b2.handshake()
    assert replay == [] and users == ["Ani", "Budi"]
    await b2.send({"type": "message", "text": "kembali"})
    got = await a.recv_until(is_notice)
    assert (got["type"], got["user"], got["id"]) == ("message", "Budi", join["id"] + 1)


@pytest.mark.gen_test
async def test_leave_is_immediate_closes_every_socket_of_the_session_and_is_announced_once(api):
    ani = await api.join("Ani", "pintu")
    budi = await api.join("Budi", "pintu")
    a = await ani.ws()
    await a.handshake()
    tabs = [await budi.ws(), await budi.ws()]  # two tabs, one member
    for tab in tabs:
        await tab.handshake()
    await a.recv_until(is_presence(["Ani", "Budi"]))
    resp = await budi.leave()
    assert resp.status == 200 and resp.json == {"left": True}
    assert [await tab.closed() for tab in tabs] == [1000, 1000]
    leave = await a.recv_until(is_notice)
    assert (leave["type"], leave["user"]) == ("leave", "Budi")
    await a.recv_until(is_presence(["Ani"]))
    await ani.post("sepi")
    assert (await a.recv_until(is_notice))["type"] == "message"  # one leave, not two
    assert await ani.users() == ["Ani"]


@pytest.mark.gen_test
async def test_a_name_in_use_is_refused_until_its_owner_leaves(api):
    ani = await api.join("Ani", "nama")
    a = await ani.ws()
    await a.handshake()
    other = await api.join("ANI", "lain")  # a token for another room is fine
    clash = await other.poll(after=0, wait=0, room="nama")
    assert clash.status == 409 and clash.json["error"] == "name_taken"
    resp = await api.request("POST", "/join", json_body={"name": "ani", "room": "nama"},
                             headers={"Accept": "application/json"})
    assert resp.status == 409 and resp.json["error"] == "name_taken"
    await ani.leave()
    assert await a.closed() == 1000
    free = await other.poll(after=0, wait=0, room="nama")
    assert free.status == 200
    assert await other.users(room="nama") == ["ANI"]


@pytest.mark.gen_test
async def test_a_long_poll_user_stays_present_between_polls(api):
    ani = await api.join("Ani", "tunggu")
    cici = await api.join("Cici", "tunggu")
    a = await ani.ws()
    await a.handshake()
    first = await cici.poll(after=0, wait=0)
    cursor = first.json["cursor"]
    await a.recv_until(is_presence(["Ani", "Cici"]))
    for i in range(3):  # each poll ends and the next starts well within the grace
        await ani.post(f"pesan {i}")
        got = await cici.poll(after=cursor, wait=5)
        assert [e["text"] for e in got.json["events"]] == [f"pesan {i}"]
        cursor = got.json["cursor"]
    types = [(await a.recv_until(is_notice))["type"] for _ in range(3)]
    assert types == ["message", "message", "message"]  # no leave, no second join


@pytest.mark.gen_test
async def test_typing_reaches_the_others_and_is_never_stored(api):
    ani = await api.join("Ani", "ketik")
    budi = await api.join("Budi", "ketik")
    a = await ani.ws()
    await a.handshake()
    b = await budi.ws()
    await b.handshake()
    await a.recv_until(is_presence(["Ani", "Budi"]))
    await b.send({"type": "typing"})
    assert await a.recv_until(lambda f: f["type"] == "typing") == {"type": "typing", "user": "Budi"}
    history = await ani.poll(after=0, wait=0)
    assert [e["type"] for e in history.json["events"]] == ["join", "join"]


@pytest.mark.gen_test
async def test_a_retried_send_is_stored_once_whatever_the_transport(api):
    ani = await api.join("Ani", "ulang")
    a = await ani.ws()
    await a.handshake()
    await a.send({"type": "message", "text": "sekali saja", "client_id": "k-1"})
    ack = await a.recv_until(lambda f: f["type"] == "ack")
    again = await ani.post("sekali saja", client_id="k-1")
    assert again.status == 201 and again.json["id"] == ack["id"]
    header = await api.request("POST", "/rooms/ulang/messages", token=ani.token, json_body={"text": "sekali saja"},
                               headers={"Idempotency-Key": "k-1"})
    assert header.json["id"] == ack["id"]
    history = await ani.poll(after=0, wait=0)
    assert [e["type"] for e in history.json["events"]] == ["join", "message"]
