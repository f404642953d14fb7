"""A restart is not a leave: presence survives it with the SQLite store.

Users who come back within the grace period after a restart (SIGTERM or SIGKILL) are
not announced again; those who do not are announced as left, once.
"""

from __future__ import annotations

import signal

import pytest

from tests.chatclient import Api, as_user, is_event, is_presence
from tests.servers import ChatProcess

ROOM = "tetap di sini"
GRACE_S = 4.0  # long enough to restart and come back in; the leaves follow it


@pytest.fixture
def server(tmp_path):
    proc = ChatProcess(tmp_path / "data", "--store=sqlite", "--cookie-secret=restart-secret", "--rate-limit=0",
                       f"--presence-grace={GRACE_S}", log_path=tmp_path / "server.log")
    yield proc
    proc.kill()


def people(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], e["user"]) for e in events if e["type"] != "message"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
@pytest.mark.gen_test(timeout=60)
async def test_a_restart_announces_nobody_who_comes_back_and_each_who_does_not_leaves_once(server, sig):
    await server.started()
    api = Api(server.url)
    try:
        ani = await api.join("Ani", ROOM)  # a browser: comes back after the restart
        a = await ani.ws()
        await a.handshake()
        budi = await api.join("Budi", ROOM)  # a browser: does not come back
        b = await budi.ws()
        await b.handshake()
        citra = await api.join("Citra", ROOM)  # curl: posts once, does not come back
        posted = await citra.post("halo dari curl")
        assert posted.status == 201
        await a.recv_until(is_presence(["Ani", "Budi", "Citra"]))  # Citra's join, then her message
        await a.recv_until(lambda f: f.get("id") == posted.json["id"])
        a.close()
        b.close()
    finally:
        api.close()
    server.stop(sig)

    await server.started()
    api = Api(server.url)
    try:
        ani = as_user(ani, api)
        a = await ani.ws(after=posted.json["id"])
        hello, replay, users = await a.handshake()
        assert hello["truncated"] is False
        assert replay == []  # nobody joined again: not Ani, and not the two who are away
        assert users == ["Ani", "Budi", "Citra"]  # still present, within the grace period
        first = await a.recv_until(is_event("leave"), timeout=GRACE_S + 10)
        second = await a.recv_until(is_event("leave"), timeout=10)
        assert {first["user"], second["user"]} == {"Budi", "Citra"}
        await a.recv_until(is_presence(["Ani"]))
        history = (await ani.poll(after=0, wait=0)).json["events"]
        assert people(history) == [("join", "Ani"), ("join", "Budi"), ("join", "Citra"),
                                   (first["type"], first["user"]), (second["type"], second["user"])]
        assert await ani.users() == ["Ani"]
        a.close()
    finally:
        api.close()


@pytest.mark.gen_test(timeout=60)
async def test_after_a_restart_a_user_who_left_stays_gone_and_a_new_join_is_announced(server):
    await server.started()
    api = Api(server.url)
    try:
        ani = await api.join("Ani", ROOM)
        a = await ani.ws()
        await a.handshake()
        assert (await ani.leave()).status == 200
    finally:
        api.close()
    server.stop(signal.SIGKILL)
    await server.started()
    api = Api(server.url)
    try:
        ani = as_user(ani, api)
        assert await ani.users() == []  # her stored leave is remembered
        a = await ani.ws()
        _, _, users = await a.handshake()
        assert users == ["Ani"]
        history = (await ani.poll(after=0, wait=0)).json["events"]
        assert people(history) == [("join", "Ani"), ("leave", "Ani"), ("join", "Ani")]
        a.close()
    finally:
        api.close()
