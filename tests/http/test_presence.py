"""Presence: join and leave events, presence frames, the grace period, explicit Leave."""

from __future__ import annotations

import pytest

from tests.chatclient import form_join, is_event, is_presence, room_url, session_cookie

NOTICES = ("message", "join", "leave")


def is_notice(frame: dict) -> bool:
    return frame.get("type") in NOTICES


@pytest.mark.settings(presence_grace=0.2)
@pytest.mark.gen_test
async def test_join_leave_events_and_presence_frames(api):
    ani = await api.join("Ani", "hall")
    budi = await api.join("Budi", "hall")
    a = await ani.ws()
    _, _, users = await a.handshake()
    assert users == ["Ani"]
    b = await budi.ws()
    _, replay, users_b = await b.handshake()
    assert users_b == ["Ani", "Budi"]
    assert [(e["type"], e["user"]) for e in replay] == [("join", "Ani"), ("join", "Budi")]

    join = await a.recv()
    assert (join["type"], join["user"], join["room"]) == ("join", "Budi", "hall") and "text" not in join
    assert a.users == ["Ani", "Budi"] and a.lists == 1  # the event is the change: no list
    assert await budi.users() == ["Ani", "Budi"]

    b.close()
    leave = await a.recv()
    assert (leave["type"], leave["user"], leave["id"]) == ("leave", "Budi", join["id"] + 1)
    assert a.users == ["Ani"] and a.lists == 1  # the event is the change: no list
    assert await ani.users() == ["Ani"]
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_reload_within_grace_announces_nothing(api):
    ani = await api.join("Ani", "reload")
    budi = await api.join("Budi", "reload")
    a = await ani.ws()
    await a.handshake()
    b = await budi.ws()
    await b.handshake()
    join = await a.recv_until(is_event("join", "Budi"))
    b.close()
    await b.closed()
    b2 = await budi.ws(after=join["id"])  # the page reloads
    hello2, replay, users = await b2.handshake()
    assert replay == [] and users == ["Ani", "Budi"] and hello2["truncated"] is False
    await b2.send({"type": "message", "text": "sudah dimuat ulang"})
    # The next event Ani sees after Budi's join is his message: no leave, no second join.
    got = await a.recv_until(is_notice)
    assert (got["type"], got["user"], got["id"]) == ("message", "Budi", join["id"] + 1)
    a.close()
    b2.close()


@pytest.mark.settings(presence_grace=0.2)
@pytest.mark.gen_test
async def test_gone_longer_than_grace_announces_one_leave(api):
    ani = await api.join("Ani", "away")
    budi = await api.join("Budi", "away")
    a = await ani.ws()
    await a.handshake()
    b1 = await budi.ws()
    await b1.handshake()
    b2 = await budi.ws()  # a second tab
    await b2.handshake()
    join = await a.recv_until(is_event("join", "Budi"))
    b1.close()
    b2.close()
    leave = await a.recv_until(is_notice)
    assert (leave["type"], leave["user"], leave["id"]) == ("leave", "Budi", join["id"] + 1)
    await a.recv_until(is_presence(["Ani"]))
    await a.send({"type": "message", "text": "sendirian"})
    got = await a.recv_until(is_notice)  # exactly one leave: the next event is Ani's message
    assert (got["type"], got["id"]) == ("message", leave["id"] + 1)
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_explicit_leave_is_immediate_and_closes_the_sockets(api):
    ani = await api.join("Ani", "exit")
    budi = await api.join("Budi", "exit")
    a = await ani.ws()
    await a.handshake()
    b1 = await budi.ws()
    await b1.handshake()
    b2 = await budi.ws()
    await b2.handshake()
    join = await a.recv_until(is_event("join", "Budi"))
    await a.recv_until(is_presence(["Ani", "Budi"]))

    resp = await budi.leave()
    assert resp.status == 200 and resp.json == {"left": True}
    # Both of Budi's sockets are closed with 1000, and Ani hears it now (the grace period is 30 s).
    assert await b1.closed() == 1000
    assert await b2.closed() == 1000
    leave = await a.recv_until(is_notice)
    assert (leave["type"], leave["user"], leave["id"]) == ("leave", "Budi", join["id"] + 1)
    assert a.users == ["Ani"] and a.lists == 1  # the event is the change: no list
    assert await ani.users() == ["Ani"]

    # Leaving when not present changes nothing and still answers.
    again = await budi.leave()
    assert again.status == 200 and again.json == {"left": True}
    await a.send({"type": "message", "text": "dadah"})
    assert (await a.recv_until(is_notice))["id"] == leave["id"] + 1
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_form_leave_redirects_to_the_join_page(api):
    ani = await api.join("Ani", "Proyek PBO")
    a = await ani.ws()
    await a.handshake()
    joined = await form_join(api, "Budi", "Proyek PBO")
    assert joined.status == 303
    cookie = session_cookie(joined)
    poll = await api.request("GET", room_url("Proyek PBO", "/messages?after=0&wait=0"), headers={"Cookie": cookie})
    assert poll.status == 200  # the cookie makes Budi present through a poll
    await a.recv_until(is_presence(["Ani", "Budi"]))

    resp = await api.request("POST", room_url("Proyek PBO", "/leave"), body="", headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 303
    assert resp.headers["Location"] == "/?room=Proyek%20PBO&left=1"  # the join page says you left
    await a.recv_until(is_event("leave", "Budi"))
    await a.recv_until(is_presence(["Ani"]))
    a.close()


@pytest.mark.gen_test
async def test_users_answers_any_session(api):
    ani = await api.join("Ani", "seen")
    outsider = await api.join("Citra", "elsewhere")
    a = await ani.ws()
    await a.handshake()
    assert await outsider.users("seen") == ["Ani"]
    nowhere = await api.request("GET", room_url("nobody-here", "/users"), token=outsider.token)
    assert nowhere.status == 404 and nowhere.json["error"] == "no_such_room"  # nobody ever joined it
    anon = await api.request("GET", room_url("seen", "/users"))
    assert anon.status == 401 and anon.json["error"] == "unauthorized"
    a.close()
