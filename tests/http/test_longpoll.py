"""Long-poll: holds until an event arrives, answers at the timeout, validates ``wait``, stops when the client goes."""

from __future__ import annotations

import asyncio

import pytest

from tests.chatclient import held_poll_by_newcomer, is_event, is_presence, raw_request, room_url


@pytest.mark.gen_test
async def test_longpoll_holds_until_an_event_arrives(api):
    ani = await api.join("Ani", "hold")
    budi = await api.join("Budi", "hold")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    # wait above 60 is accepted (clamped to 60), not refused
    poll, join = await held_poll_by_newcomer(a, budi, hello["cursor"], wait=100000)
    await a.recv_until(is_presence(["Ani", "Budi"]))
    assert not poll.done()
    await a.send({"type": "message", "text": "bangun"})
    resp = await asyncio.wait_for(poll, 5)
    assert resp.status == 200
    body = resp.json
    assert [(e["id"], e["text"]) for e in body["events"]] == [(join["id"] + 1, "bangun")]
    assert body["cursor"] == join["id"] + 1 and body["truncated"] is False
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_longpoll_answers_at_timeout_with_empty_list_and_same_cursor(api):
    budi = await api.join("Budi", "timeout")
    first = await budi.poll()
    cursor = first.json["cursor"]
    resp = await budi.poll(after=cursor, wait=0.3)
    assert resp.status == 200
    assert resp.json["events"] == [] and resp.json["cursor"] == cursor and resp.json["truncated"] is False
    assert resp.json["epoch"] == first.json["epoch"]

    at_once = await budi.poll(after=cursor, wait=0)
    assert at_once.status == 200 and at_once.json["events"] == [] and at_once.json["cursor"] == cursor


@pytest.mark.gen_test
async def test_bad_wait_is_400(api):
    budi = await api.join("Budi", "badwait")
    for wait in ("abc", "-1", "nan", "1s", "0x10", "--1"):
        resp = await budi.poll(after=0, wait=wait)
        assert resp.status == 400, (wait, resp.body)
        assert resp.json["error"] == "bad_request" and "wait" in resp.json["detail"]


@pytest.mark.gen_test
async def test_longpoll_cancelled_when_the_client_goes_away(api, hub):
    ani = await api.join("Ani", "gone")
    budi = await api.join("Budi", "gone")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    path = room_url("gone", f"/messages?after={hello['cursor'] + 1}&wait=30")
    _, writer = await raw_request(api.base_url, "GET", path, {"Authorization": f"Bearer {budi.token}"})
    await a.recv_until(is_event("join", "Budi"))
    await a.recv_until(is_presence(["Ani", "Budi"]))
    assert await ani.users() == ["Ani", "Budi"]  # a round trip: the poll has reached its wait by now
    assert hub.loaded("gone").waiting == 1

    writer.close()  # the client goes away mid-poll
    # The poll stops at once, so Budi's only connection is gone: he leaves after the grace
    # period (0.3 s), long before the 30 s wait would have ended.
    leave = await a.recv_until(is_event("leave", "Budi"))
    assert leave["id"] == hello["cursor"] + 2
    await a.recv_until(is_presence(["Ani"]))
    assert hub.loaded("gone").waiting == 0
    assert await ani.users() == ["Ani"]
    a.close()


@pytest.mark.gen_test
async def test_longpoll_from_a_client_gone_before_the_wait_is_not_held(api, hub):
    ani = await api.join("Ani", "gone-early")
    budi = await api.join("Budi", "gone-early")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    path = room_url("gone-early", f"/messages?after={hello['cursor'] + 1}&wait=30")
    _, writer = await raw_request(api.base_url, "GET", path, {"Authorization": f"Bearer {budi.token}"})
    writer.close()  # at once: the server reads the request and the end of the stream together
    await a.recv_until(is_event("join", "Budi"))
    # Not held for 30 s: Budi leaves once the grace period is over.
    await a.recv_until(is_event("leave", "Budi"))
    assert hub.loaded("gone-early").waiting == 0
    a.close()


@pytest.mark.settings(presence_grace=0.5)
@pytest.mark.gen_test(timeout=15)
async def test_longpoll_user_stays_present_while_polling(api):
    ani = await api.join("Ani", "polling")
    budi = await api.join("Budi", "polling")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    # Budi's only connection is one poll held longer (0.8 s) than the grace period (0.5 s).
    # One poll, not several in a row: the gap between two polls is the machine's to choose,
    # and a gap longer than the grace period is a real leave.
    poll, join = await held_poll_by_newcomer(a, budi, hello["cursor"], wait=0.8)
    assert await ani.users() == ["Ani", "Budi"]
    resp = await asyncio.wait_for(poll, 5)
    # It ran out with nothing new: a leave (or a second join) in the room would have answered it at once.
    assert resp.status == 200
    assert resp.json["events"] == [] and resp.json["cursor"] == join["id"]
    # Budi stops polling: he leaves once the grace period is over, and nothing came between.
    got = await a.recv_until(lambda f: f.get("type") in ("message", "leave", "join"))
    assert (got["type"], got["user"], got["id"]) == ("leave", "Budi", join["id"] + 1)
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_longpoll_answers_when_someone_types_and_names_them(api):
    """A long-poll reader sees typing too: a notice wakes its poll, the answer names the typist
    (never the reader), and the typist's message ends it."""
    ani = await api.join("Ani", "ketik-lp")
    budi = await api.join("Budi", "ketik-lp")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    poll, join = await held_poll_by_newcomer(a, budi, hello["cursor"], wait=30)
    await a.send({"type": "typing"})
    body = (await asyncio.wait_for(poll, 5)).json
    assert body["events"] == [] and body["cursor"] == join["id"] and body["typing"] == ["Ani"]

    await a.send({"type": "message", "text": "selesai"})
    body = (await budi.poll(after=join["id"], wait=30)).json
    assert [e["text"] for e in body["events"]] == ["selesai"] and body["typing"] == []

    # The answer names who types after their message, never the reader.
    await a.send({"type": "message", "text": "dua"})
    await a.send({"type": "typing"})  # after a message: not held back by the 2 s interval
    await a.recv_until(is_event("message"))  # "dua", and the typing notice behind it:
    await a.recv_until(lambda f: f["type"] == "typing" and f["user"] == "Ani")
    sent = await api.request("POST", room_url("ketik-lp", "/typing"), token=budi.token)
    assert sent.json == {"sent": True}
    await a.recv_until(lambda f: f["type"] == "typing" and f["user"] == "Budi")
    body = (await budi.poll(after=body["cursor"], wait=30)).json
    assert [e["text"] for e in body["events"]] == ["dua"] and body["typing"] == ["Ani"]
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_typing_right_after_a_send_goes_out_at_once(api):
    """Sending ends a burst of typing: the next notice is not held back by the 2 s interval."""
    ani = await api.join("Ani", "ketik-lagi")
    typing = room_url("ketik-lagi", "/typing")
    assert (await api.request("POST", typing, token=ani.token)).json == {"sent": True}
    assert (await api.request("POST", typing, token=ani.token)).json == {"sent": False}  # within 2 s
    assert (await ani.post("satu")).status == 201
    assert (await api.request("POST", typing, token=ani.token)).json == {"sent": True}


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_a_waiting_longpoll_answers_410_left_when_its_session_leaves(api):
    """Leave (here, or in another tab of the same session): the session's poll in progress says
    so at once, rather than waiting on and joining again with the next poll."""
    ani = await api.join("Ani", "pergi")
    budi = await api.join("Budi", "pergi")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    poll, _join = await held_poll_by_newcomer(a, budi, hello["cursor"], wait=30)
    assert (await budi.leave()).status == 200
    resp = await asyncio.wait_for(poll, 5)
    assert resp.status == 410 and resp.json["error"] == "left", resp.body
    assert "join again" in resp.json["detail"]
    await a.recv_until(is_event("leave", "Budi"))
    assert await ani.users() == ["Ani"]
    a.close()
