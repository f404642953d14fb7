"""Chatting end to end: WebSocket with WebSocket, WebSocket with long-poll, identity and the 409."""

from __future__ import annotations

import asyncio

import pytest

from tests.chatclient import form_join, is_event, is_presence, room_url


@pytest.mark.gen_test
async def test_two_websocket_users_chat_both_ways(api):
    ani = await api.join("Ani", "lobby")
    budi = await api.join("Budi", "lobby")
    a = await ani.ws()
    hello, events, users = await a.handshake()
    assert hello["truncated"] is False and users == ["Ani"]
    assert [(e["type"], e["user"]) for e in events] == [("join", "Ani")]
    b = await budi.ws()
    await b.handshake()
    joined = await a.recv_until(is_event("join", "Budi"))
    await a.recv_until(is_presence(["Ani", "Budi"]))

    await b.send({"type": "message", "text": "halo Ani"})
    got_a = await a.recv_until(is_event("message"))
    got_b = await b.recv_until(is_event("message"))
    assert got_a == got_b  # the same stored event reaches everyone, its author included
    assert got_a["user"] == "Budi" and got_a["text"] == "halo Ani" and got_a["room"] == "lobby"
    assert got_a["id"] == joined["id"] + 1

    await a.send({"type": "message", "text": "halo Budi"})
    reply = await b.recv_until(is_event("message"))
    assert reply["user"] == "Ani" and reply["text"] == "halo Budi" and reply["id"] == got_a["id"] + 1
    assert (await a.recv_until(is_event("message")))["id"] == reply["id"]
    a.close()
    b.close()


@pytest.mark.gen_test
async def test_event_fields(api):
    ani = await api.join("Ani", "fields")
    resp = await ani.post("halo")
    assert resp.status == 201
    event = resp.json
    assert set(event) == {"id", "type", "room", "user", "ts", "text"}
    assert event["type"] == "message" and event["id"] == 2  # after Ani's join (her first request here)
    # YYYY-MM-DDTHH:MM:SS.sssZ
    ts = event["ts"]
    assert len(ts) == 24 and ts[10] == "T" and ts[19] == "." and ts.endswith("Z"), ts
    assert ts[20:23].isdigit()


# Budi is present only while a poll is in progress: a long grace keeps him from leaving between
# his poll and his post, however slow the machine is to get from one to the other.
@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_websocket_user_and_longpoll_user_chat_both_ways(api):
    ani = await api.join("Ani", "mixed")
    budi = await api.join("Budi", "mixed")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    cursor = hello["cursor"]

    # Budi's first connection is this long-poll: it makes him present (Ani sees him join),
    # and since it asks for what comes after his own join it is held until something new happens.
    poll = asyncio.ensure_future(budi.poll(after=cursor + 1, wait=10))
    join = await a.recv_until(is_event("join", "Budi"))
    assert join["id"] == cursor + 1
    await a.recv_until(is_presence(["Ani", "Budi"]))
    assert not poll.done()

    await a.send({"type": "message", "text": "Budi, kamu di sana?"})
    answer = await asyncio.wait_for(poll, 5)
    assert answer.status == 200
    body = answer.json
    assert [(e["type"], e["user"], e.get("text")) for e in body["events"]] == [
        ("message", "Ani", "Budi, kamu di sana?")]
    assert body["cursor"] == join["id"] + 1 and body["truncated"] is False
    assert body["epoch"] == hello["epoch"]

    await a.recv_until(is_event("message", "Ani"))  # Ani's own message comes back to her too
    resp = await budi.post("ya, lewat long-poll")
    assert resp.status == 201
    got = await a.recv_until(is_event("message"))
    assert got["user"] == "Budi" and got["text"] == "ya, lewat long-poll" and got["id"] == body["cursor"] + 1
    # and Budi's next poll sees his own message and nothing else
    nxt = await budi.poll(after=body["cursor"], wait=5)
    assert [e["id"] for e in nxt.json["events"]] == [got["id"]] and nxt.json["cursor"] == got["id"]
    a.close()


@pytest.mark.gen_test
async def test_author_is_the_session_name_never_the_payload(api):
    budi = await api.join("Budi", "identity")
    b = await budi.ws()
    await b.handshake()
    await b.send({"type": "message", "text": "aku Ani", "user": "Ani", "room": "elsewhere", "id": 999})
    got = await b.recv_until(is_event("message"))
    assert got["user"] == "Budi" and got["room"] == "identity" and got["id"] != 999

    resp = await api.request("POST", room_url("identity", "/messages"), token=budi.token,
                             json_body={"text": "aku juga Ani", "user": "Ani", "room": "elsewhere"})
    assert resp.status == 201
    assert resp.json["user"] == "Budi" and resp.json["room"] == "identity"
    b.close()


@pytest.mark.gen_test
async def test_one_session_several_connections(api):
    ani = await api.join("Ani", "multi")
    budi = await api.join("Budi", "multi")
    a1 = await ani.ws()
    await a1.handshake()
    a2 = await ani.ws()
    _, _, users = await a2.handshake()
    assert users == ["Ani"]  # present once, not twice
    b = await budi.ws()
    await b.handshake()
    await b.send({"type": "message", "text": "untuk kedua tab"})
    m1 = await a1.recv_until(is_event("message"))
    m2 = await a2.recv_until(is_event("message"))
    assert m1 == m2 == await b.recv_until(is_event("message"))

    # Closing one of Ani's two sockets announces nothing: a poll by Budi that spans more than
    # the grace period (0.3 s in tests) comes back empty, and Ani is still listed.
    a1.close()
    cursor = m1["id"]
    quiet = await budi.poll(after=cursor, wait=1.0)
    assert quiet.status == 200 and quiet.json["events"] == [] and quiet.json["cursor"] == cursor
    assert await budi.users() == ["Ani", "Budi"]
    await a2.send({"type": "message", "text": "masih di sini"})
    got = await b.recv_until(is_event("message"))
    assert got["user"] == "Ani" and got["id"] == cursor + 1
    a2.close()
    b.close()


@pytest.mark.gen_test
async def test_name_taken_while_present_under_another_session(api):
    # The impostor gets a session while the name is free...
    impostor = await api.join("ani", "clash")
    ani = await api.join("Ani", "clash")
    a = await ani.ws()
    await a.handshake()
    # ...then Ani is present, and every way in answers 409.
    for name in ("Ani", "ANI", "ani"):
        resp = await api.request("POST", "/join", json_body={"name": name, "room": "clash"},
                                 headers={"Accept": "application/json"})
        assert resp.status == 409, (name, resp.body)
        assert resp.json["error"] == "name_taken" and resp.json["detail"]

    form = await form_join(api, "aNi", "clash")
    assert form.status == 409 and b"This name is taken in this room right now." in form.body

    ws = await api.request("GET", room_url("clash", "/ws"), token=impostor.token, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert ws.status == 409 and ws.json["error"] == "name_taken"

    poll = await impostor.poll(after=0, wait=0)
    assert poll.status == 409 and poll.json["error"] == "name_taken"
    post = await impostor.post("aku Ani")
    assert post.status == 409 and post.json["error"] == "name_taken"

    # the name is free in another room, and in this one once Ani has left
    assert (await api.request("POST", "/join", json_body={"name": "Ani", "room": "other"},
                              headers={"Accept": "application/json"})).status == 200
    assert (await ani.leave()).json == {"left": True}
    assert await a.closed() == 1000
    assert (await impostor.post("sekarang boleh")).status == 201


@pytest.mark.gen_test
async def test_name_clash_uses_nfc_and_casefold(api):
    jose = await api.join("Jose\u0301", "nfc")  # decomposed é
    assert jose.name == "Jose\u0301"
    j = await jose.ws()
    hello, _, users = await j.handshake()
    assert users == ["Jos\u00e9"] and hello["user"] == "Jos\u00e9"  # stored composed
    resp = await api.request("POST", "/join", json_body={"name": "JOS\u00c9", "room": "nfc"},
                             headers={"Accept": "application/json"})
    assert resp.status == 409 and resp.json["error"] == "name_taken"
    j.close()


@pytest.mark.gen_test
async def test_websocket_join_race_keeps_name_exclusive(api):
    # Two sessions with one name both get tokens while the room is empty; the first to connect wins.
    first = await api.join("Sari", "race")
    second = await api.join("sari", "race")
    s1 = await first.ws()
    await s1.handshake()
    resp = await api.request("GET", room_url("race", "/ws"), token=second.token, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 409
    assert await first.users() == ["Sari"]
    s1.close()
