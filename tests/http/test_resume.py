"""Cursors and resume: exactly the events after N, or ``truncated: true`` with the tail."""

from __future__ import annotations

import pytest

from tests.chatclient import Socket, User, is_event

# Long enough that nobody leaves in the middle of a test: the sequences below are exact.
STAY = pytest.mark.settings(presence_grace=30.0, rate_limit=0)


async def send_and_confirm(sock: Socket, texts: list[str]) -> list[dict]:
    """Send messages over ``sock`` and return them as stored (each comes back to its sender)."""
    for text in texts:
        await sock.send({"type": "message", "text": text})
    got = []
    for text in texts:
        event = await sock.recv_until(is_event("message"))
        assert event["text"] == text
        got.append(event)
    return got


async def post_many(user: User, count: int, prefix: str = "m") -> list[dict]:
    events = []
    for i in range(count):
        resp = await user.post(f"{prefix}{i}")
        assert resp.status == 201, resp.body
        events.append(resp.json)
    return events


def ids(events: list[dict]) -> list[int]:
    return [e["id"] for e in events]


@STAY
@pytest.mark.gen_test
async def test_websocket_resume_after_disconnect_no_gap_no_duplicate(api):
    ani = await api.join("Ani", "resume")
    budi = await api.join("Budi", "resume")
    a = await ani.ws()
    await a.handshake()
    b = await budi.ws()
    await b.handshake()
    await a.recv_until(is_event("join", "Budi"))
    [seen] = await send_and_confirm(a, ["satu"])
    await b.recv_until(is_event("message"))
    a.close()
    await a.closed()  # the closing handshake is over

    missed = await send_and_confirm(b, ["dua", "tiga", "empat"])
    a2 = await ani.ws(after=seen["id"])
    hello, replay, users = await a2.handshake()
    assert hello["truncated"] is False and hello["cursor"] == missed[-1]["id"]
    assert replay == missed  # exactly what was missed: no gap, nothing twice, no join/leave (a reload)
    assert users == ["Ani", "Budi"]

    [live] = await send_and_confirm(b, ["lima"])
    assert await a2.recv_until(is_event("message")) == live
    assert live["id"] == missed[-1]["id"] + 1
    a2.close()
    b.close()


@STAY
@pytest.mark.gen_test
async def test_longpoll_resume_after_disconnect_no_gap_no_duplicate(api):
    ani = await api.join("Ani", "resume-lp")
    budi = await api.join("Budi", "resume-lp")
    first = await budi.poll()  # no after: the last 50 at once (here only Budi's own join)
    assert first.status == 200
    assert [(e["type"], e["user"]) for e in first.json["events"]] == [("join", "Budi")]
    cursor = first.json["cursor"]
    assert cursor == first.json["events"][-1]["id"]

    a = await ani.ws()
    await a.handshake()
    sent = await send_and_confirm(a, ["p1", "p2", "p3"])
    resp = await budi.poll(after=cursor, wait=5)
    body = resp.json
    assert body["truncated"] is False
    assert [e["type"] for e in body["events"]] == ["join", "message", "message", "message"]
    assert body["events"][1:] == sent
    assert ids(body["events"]) == list(range(cursor + 1, cursor + 5))
    assert body["cursor"] == sent[-1]["id"]  # the id of the last event returned

    # nothing new: an empty list and the same cursor
    again = await budi.poll(after=body["cursor"], wait=0)
    assert again.json["events"] == [] and again.json["cursor"] == body["cursor"]
    assert again.json["truncated"] is False
    a.close()


@STAY
@pytest.mark.gen_test
async def test_epoch_mismatch_is_truncated_with_the_tail(api):
    budi = await api.join("Budi", "epoch")
    first = await budi.poll()
    epoch = first.json["epoch"]
    assert isinstance(epoch, str) and epoch
    events = await post_many(budi, 3)
    everything = first.json["events"] + events

    same = await budi.poll(after=first.json["cursor"], epoch=epoch, wait=0)
    assert same.json["truncated"] is False and same.json["events"] == events

    other = await budi.poll(after=first.json["cursor"], epoch="0000dead", wait=0)
    body = other.json
    assert body["truncated"] is True and body["epoch"] == epoch
    assert body["events"] == everything and body["cursor"] == events[-1]["id"]

    ws = await budi.ws(after=first.json["cursor"], epoch="0000dead")
    hello, replay, _ = await ws.handshake()
    assert hello["truncated"] is True and hello["epoch"] == epoch and replay == everything
    ws.close()


@STAY
@pytest.mark.gen_test
async def test_cursor_beyond_newest_is_truncated_with_the_tail(api):
    budi = await api.join("Budi", "beyond")
    first = await budi.poll()
    events = first.json["events"] + await post_many(budi, 2)
    newest = events[-1]["id"]

    for after in (newest + 1, 10**12):
        resp = await budi.poll(after=after, wait=5)  # answers at once: it would never be exact
        assert resp.status == 200
        body = resp.json
        assert body["truncated"] is True and body["events"] == events and body["cursor"] == newest

    ws = await budi.ws(after=newest + 5)
    hello, replay, _ = await ws.handshake()
    assert hello["truncated"] is True and replay == events and hello["cursor"] == newest
    ws.close()


@pytest.mark.settings(buffer_size=5, presence_grace=30.0, rate_limit=0)
@pytest.mark.gen_test
async def test_cursor_older_than_the_buffer_is_truncated_with_the_tail(api):
    ani = await api.join("Ani", "old")
    budi = await api.join("Budi", "old")
    a = await ani.ws()  # Ani's join is id 1
    await a.handshake()
    events = await post_many(budi, 10)  # Budi's first post makes him present: his join is id 2
    assert ids(events) == list(range(3, 13))  # the buffer holds 8..12
    join = await a.recv_until(is_event("join", "Budi"))
    assert join["id"] == 2
    held = events[-5:]
    b = await budi.ws(after=12)  # present already: nothing new, no second join
    hello, replay, _ = await b.handshake()
    assert hello["truncated"] is False and hello["cursor"] == 12 and replay == []

    exact = await budi.poll(after=7, wait=0)  # 8..12 are all held: exact
    assert exact.json["truncated"] is False and exact.json["events"] == held
    for after in (6, 1, 0):
        resp = await budi.poll(after=after, wait=0)
        body = resp.json
        assert body["truncated"] is True, after
        assert body["events"] == held and body["cursor"] == 12

    ws = await budi.ws(after=1)
    hello, replay, _ = await ws.handshake()
    assert hello["truncated"] is True and replay == held
    for s in (a, b, ws):
        s.close()


@STAY
@pytest.mark.gen_test
async def test_no_after_gives_the_last_50(api):
    budi = await api.join("Budi", "tail")
    events = await post_many(budi, 60)  # his first post makes him present: his join is id 1
    resp = await budi.poll()
    body = resp.json
    assert body["truncated"] is False
    assert ids(body["events"]) == list(range(12, 62))
    assert body["events"] == events[10:] and body["cursor"] == 61

    ws = await budi.ws()
    hello, replay, _ = await ws.handshake()
    assert hello["truncated"] is False and hello["cursor"] == 61
    assert replay == body["events"]
    ws.close()


@STAY
@pytest.mark.gen_test
async def test_after_zero_in_a_new_room_gives_everything(api):
    budi = await api.join("Budi", "fresh")
    resp = await budi.poll(after=0, wait=5)
    body = resp.json
    assert body["truncated"] is False and ids(body["events"]) == [1] and body["cursor"] == 1


@STAY
@pytest.mark.gen_test(timeout=20)
async def test_long_backlog_continues_from_the_cursor(api):
    """More than one answer's worth: the cursor is the id of the last event returned."""
    budi = await api.join("Budi", "many")
    b = await budi.ws()  # id 1
    await b.handshake()
    texts = [f"n{i}" for i in range(700)]
    sent = await send_and_confirm(b, texts)  # ids 2..701
    seen: list[dict] = []
    cursor = 0
    while True:
        resp = await budi.poll(after=cursor, wait=0)
        body = resp.json
        assert body["truncated"] is False
        if not body["events"]:
            assert body["cursor"] == cursor
            break
        assert body["cursor"] == body["events"][-1]["id"]
        assert body["events"][0]["id"] == cursor + 1
        seen.extend(body["events"])
        cursor = body["cursor"]
    assert ids(seen) == list(range(1, 702))
    assert seen[1:] == sent
    b.close()
