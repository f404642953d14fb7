"""The one publish path: a committed event reaches every attached listener once, in one batch per
loop iteration and before the ack of it; a retry is stored once; a reconnecting client is replayed
what it missed with no gap and no duplicate; long-polls answer at once, at the next publish, at
their timeout, or not at all once the client went away."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from backends import open_backend
from rooms import Hub, HubConfig, Session
from rooms.models import Draft, Payload, dumps
from rooms.ports import Metrics
from tests.unit.fakes import GRACE_S, ROOM, Recorder, connect, notices, within

ANI = Session("sid-ani", "Ani")
BUDI = Session("sid-budi", "Budi")
CICI = Session("sid-cici", "Cici")


def ack(client_id: str, event_id: int) -> Payload:
    return Payload(dumps({"type": "ack", "client_id": client_id, "id": event_id}))


@pytest.mark.gen_test
async def test_a_post_reaches_every_attached_listener_once(hub):
    async with contextlib.AsyncExitStack() as stack:
        ani, ani_tab = await connect(stack, hub, ANI)
        _, budi_tab = await connect(stack, hub, BUDI)
        _, budi_other_tab = await connect(stack, hub, BUDI, label="Budi, second tab")
        async with contextlib.AsyncExitStack() as gone:
            _, cici_tab = await connect(gone, hub, CICI)
        event = await ani.post("halo semua", "c-1")
        closing, _ = await hub.post(ROOM, BUDI, "penutup")
        for tab in (ani_tab, budi_tab, budi_other_tab):
            await tab.until(lambda tab=tab: "penutup" in tab.texts())
            # The event as stored, once: its session and client_id are never handed out.
            assert tab.events("message") == [event.public(), closing.public()]
            assert "client_id" not in event.public() and "session" not in event.public()
        assert cici_tab.texts() == []  # a connection that ended gets nothing more


@pytest.mark.gen_test
async def test_events_committed_in_one_loop_iteration_reach_each_listener_in_one_batch(hub):
    async with contextlib.AsyncExitStack() as stack:
        ani, ani_tab = await connect(stack, hub, ANI)
        budi, budi_tab = await connect(stack, hub, BUDI)
        sent = await asyncio.gather(ani.post("satu", None), budi.post("dua", None), ani.post("tiga", None))
        assert [e.id for e in sent] == list(range(sent[0].id, sent[0].id + 3))  # in the order they were made
        for tab in (ani_tab, budi_tab):
            await tab.until(lambda tab=tab: len(tab.texts()) == 3)
            with_messages = [b for b in tab.batches if any(f["type"] == "message" for f in b)]
            assert with_messages == [[e.public() for e in sent]]


@pytest.mark.gen_test
async def test_a_post_announces_the_join_of_a_session_that_was_not_present_first(hub):
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        event, created = await hub.post(ROOM, BUDI, "baru datang")  # e.g. curl, no page view before
        assert created
        await watch.until(lambda: watch.texts() == ["baru datang"])
        assert [(e["type"], e["user"]) for e in watch.events()] == [("join", "Budi"), ("message", "Budi")]
        assert watch.events("join")[0]["id"] == event.id - 1


@pytest.mark.gen_test
async def test_an_ack_sent_right_after_a_post_arrives_after_the_event(hub):
    async with contextlib.AsyncExitStack() as stack:
        ani, ani_tab = await connect(stack, hub, ANI)
        _, budi_tab = await connect(stack, hub, BUDI)
        event = await ani.post("halo", "c-1")
        ani.reply(ack("c-1", event.id))  # what the WebSocket handler does once the post returns
        await ani_tab.until(lambda: any(f["type"] == "ack" for f in ani_tab.frames))
        seen = [(f["type"], f.get("id")) for f in ani_tab.frames if f["type"] in ("message", "ack")]
        assert seen == [("message", event.id), ("ack", event.id)]
        await budi_tab.until(lambda: budi_tab.texts() == ["halo"])
        assert [f for f in budi_tab.frames if f["type"] == "ack"] == []  # a reply is for its connection alone

        # A reply made while a broadcast is queued goes out behind that broadcast, in the same send.
        assert hub.typing(ROOM, BUDI)
        ani.reply(Payload(dumps({"type": "error", "error": "rate_limited"})))
        typing = [{"type": "typing", "user": "Budi"}]
        await ani_tab.until(lambda: ani_tab.calls[-1][0] == "batch")
        assert ani_tab.calls[-1] == ("batch", typing, [{"type": "error", "error": "rate_limited"}])
        await budi_tab.until(lambda: budi_tab.calls[-1][0] == "batch" and budi_tab.calls[-1][1] == typing)
        assert budi_tab.calls[-1] == ("batch", typing, None)


@pytest.mark.gen_test
async def test_a_retry_with_the_same_client_id_stores_nothing_new(hub):
    async with contextlib.AsyncExitStack() as stack:
        ani, _ = await connect(stack, hub, ANI)
        _, budi_tab = await connect(stack, hub, BUDI)
        first = await ani.post("sekali saja", "k-1")
        again = await ani.post("sekali saja", "k-1")  # the ack was lost: the client sends it again
        over_http, created = await hub.post(ROOM, ANI, "sekali saja", "k-1")  # or over the other transport
        assert again.id == first.id == over_http.id and not created
        theirs, created = await hub.post(ROOM, BUDI, "sekali saja", "k-1")  # a key belongs to its session
        assert created and theirs.id == first.id + 1
        await budi_tab.until(lambda: len(budi_tab.texts()) == 2)
        assert [(e["id"], e["user"]) for e in budi_tab.events("message")] == [(first.id, "Ani"), (theirs.id, "Budi")]
        stored = [e for e in (await hub.read(ROOM, 0)).events if e.type == "message"]
        assert [(e.id, e.user) for e in stored] == [(first.id, "Ani"), (theirs.id, "Budi")]


@pytest.mark.gen_test
async def test_attach_replays_from_the_cursor_then_goes_live_with_no_gap_and_no_duplicate(hub):
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        await hub.touch(ROOM, BUDI)  # Budi is present (he just loaded the page) and had read up to here
        cursor = await hub.read(ROOM, None)
        missed, _ = await hub.post(ROOM, ANI, "sebelum")
        # Committed and published just now: its broadcast is still queued when Budi attaches.
        queued, _ = await hub.store.append(Draft("message", ROOM, "Ani", "di antrean", ANI.sid))
        hub.broker.publish(ROOM, queued)
        budi_tab = Recorder("Budi")
        budi = await stack.enter_async_context(hub.join(ROOM, BUDI, budi_tab))
        replay = await budi.attach(cursor.cursor, cursor.epoch)
        assert replay is not None and not replay.truncated and replay.epoch == cursor.epoch
        assert [e.id for e in replay.events] == [missed.id, queued.id] and replay.cursor == queued.id
        later, _ = await hub.post(ROOM, ANI, "sesudah")
        await budi_tab.until(lambda: "sesudah" in budi_tab.texts())
        assert budi_tab.events("message") == [later.public()]  # nothing replayed comes again live
        await watch.until(lambda: watch.texts() == ["sebelum", "di antrean", "sesudah"])


@pytest.mark.gen_test
async def test_events_published_out_of_order_are_held_back_until_the_gap_fills(hub):
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        now = await hub.read(ROOM, None)
        polling = asyncio.ensure_future(hub.poll(ROOM, ANI, now.cursor, now.epoch, 30))
        await asyncio.sleep(0)  # one loop iteration: the poll reads, finds nothing and waits
        assert hub.loaded(ROOM).waiting == 1
        one, _ = await hub.store.append(Draft("message", ROOM, "Budi", "satu", "sid-elsewhere"))
        two, _ = await hub.store.append(Draft("message", ROOM, "Budi", "dua", "sid-elsewhere"))
        assert hub.deliver(ROOM, two) == now.cursor  # as a broker would, from another process: held back
        await asyncio.sleep(0)  # one loop iteration: a broadcast would have gone out by now
        assert watch.texts() == [] and (await hub.read(ROOM, now.cursor)).events == []
        assert hub.deliver(ROOM, one) == two.id
        answer = await within(polling)
        assert answer is not None and [e.id for e in answer.events] == [one.id, two.id]
        await watch.until(lambda: watch.texts() == ["satu", "dua"])
        assert [b for b in watch.batches if any(f["type"] == "message" for f in b)] == [[one.public(), two.public()]]


# -- long-polls ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_poll_answers_at_once_when_there_are_events_after_its_cursor(hub):
    await hub.touch(ROOM, ANI)
    before = await hub.read(ROOM, None)
    posted = [(await hub.post(ROOM, ANI, text))[0] for text in ("satu", "dua")]
    answer = await within(hub.poll(ROOM, ANI, before.cursor, before.epoch, 30))
    assert answer is not None and not answer.truncated
    assert [e.id for e in answer.events] == [e.id for e in posted] and answer.cursor == posted[-1].id
    # A session's first poll is its join: answered at once with it, however long it would wait.
    first = await within(hub.poll(ROOM, BUDI, answer.cursor, answer.epoch, 30))
    assert first is not None and [(e.type, e.user) for e in first.events] == [("join", "Budi")]


@pytest.mark.gen_test
async def test_a_poll_waits_for_the_next_publish(hub):
    await hub.touch(ROOM, ANI)
    await hub.touch(ROOM, BUDI)
    now = await hub.read(ROOM, None)
    polling = asyncio.ensure_future(hub.poll(ROOM, ANI, now.cursor, now.epoch, 30))
    await asyncio.sleep(0)  # one loop iteration: the poll reads, finds nothing and waits
    assert hub.loaded(ROOM).waiting == 1 and not polling.done()
    event, _ = await hub.post(ROOM, BUDI, "ada kabar")
    answer = await within(polling)
    assert answer is not None and [e.id for e in answer.events] == [event.id] and answer.cursor == event.id
    assert hub.loaded(ROOM).waiting == 0


@pytest.mark.gen_test
async def test_a_publish_answers_every_waiting_poll_and_their_timers_go_after_the_answers(hub):
    await hub.touch(ROOM, BUDI)
    sessions = [Session(f"sid-{i}", f"Tamu{i}") for i in range(50)]
    for session in sessions:
        await hub.touch(ROOM, session)
    now = await hub.read(ROOM, None)
    polls = [asyncio.ensure_future(hub.poll(ROOM, s, now.cursor, now.epoch, 30)) for s in sessions]
    await asyncio.sleep(0)  # one loop iteration: each reads, finds nothing and waits
    room = hub.loaded(ROOM)
    assert room.waiting == len(sessions) and room.waiters.timers == 1  # one timer for all: one wait
    event, _ = await hub.post(ROOM, BUDI, "untuk semua")
    answers = await within(asyncio.gather(*polls))
    assert all(a is not None and [e.id for e in a.events] == [event.id] for a in answers)
    assert room.waiting == 0 and room.waiters.timers == 0  # none left to fire 30 s from now


@pytest.mark.gen_test
async def test_polls_with_an_answer_are_answered_by_the_wake_all_before_any_task_resumes(hub):
    """A transport's ``answer`` sends from the wake itself: every poll of the wake gets the same
    Slice (made once), a typing notice leaves the typist's own poll waiting, every answer is given
    before any poll's task resumes, and ``await`` returns the Slice that was sent.  An answer that
    could not send (False), or failed, leaves its poll to its task, which reads and answers as usual."""
    await hub.touch(ROOM, BUDI)
    sessions = [Session(f"sid-{i}", f"Tamu{i}") for i in range(6)]
    for session in sessions:
        await hub.touch(ROOM, session)
    now = await hub.read(ROOM, None)
    given: list[tuple[str, list[int], list[str], int, int]] = []  # who, event ids, typing, resumed, shared
    resumed: list[str] = []

    def answer_of(session: Session, sends: bool | None):
        def answer(sl, typing, shared):
            shared[session.name] = True
            given.append((session.name, [e.id for e in sl.events], typing, len(resumed), len(shared)))
            if sends is None:
                raise RuntimeError("this transport broke")
            return sends
        return answer

    async def poll(session: Session, sends: bool | None):
        sl = await hub.poll(ROOM, session, now.cursor, now.epoch, 30, answer=answer_of(session, sends))
        resumed.append(session.name)
        return sl

    kinds = [True, True, True, True, False, None]
    polls = [asyncio.ensure_future(poll(s, sends)) for s, sends in zip(sessions, kinds, strict=True)]
    await asyncio.sleep(0)  # one loop iteration: each reads, finds nothing and waits
    room = hub.loaded(ROOM)
    assert room.waiting == len(sessions)
    room.typing_seen("Tamu0")  # as a relayed notice does: wakes every poll but Tamu0's
    answers = await within(asyncio.gather(*polls[1:]))
    assert [name for name, *_ in given] == [s.name for s in sessions[1:]]
    assert all(ids == [] and typing == ["Tamu0"] and n_resumed == 0 for _, ids, typing, n_resumed, _ in given)
    assert [n_shared for *_, n_shared in given] == [3, 4, 5, 6, 7]  # one dict for the wake (+ the Slice, who types)
    sent = [a for a, sends in zip(answers, kinds[1:], strict=True) if sends]
    assert all(a is sent[0] for a in sent)  # the Slice the wake sent, one for all
    assert all(a is not None and a.events == [] and a.cursor == now.cursor for a in answers)
    assert all(a is not sent[0] for a, sends in zip(answers, kinds[1:], strict=True) if not sends)  # read by their task
    assert not polls[0].done() and room.waiting == 1 and room.waiters.timers == 1  # the typist waits on

    event, _ = await hub.post(ROOM, BUDI, "kabar")
    typist = await within(polls[0])
    assert typist is not None and [e.id for e in typist.events] == [event.id]
    assert given[-1][:3] == ("Tamu0", [event.id], [])  # the typist is never named to themselves
    assert room.waiting == 0 and room.waiters.timers == 0


@pytest.mark.gen_test
async def test_a_cancelled_poll_answers_none_and_its_session_stays_for_the_grace(hub):
    await hub.touch(ROOM, ANI)
    now = await hub.read(ROOM, None)
    poll = hub.poll(ROOM, ANI, now.cursor, now.epoch, 30)
    polling = asyncio.ensure_future(poll)
    await asyncio.sleep(0)  # one loop iteration: it waits
    assert hub.loaded(ROOM).waiting == 1
    cancelled_at = time.monotonic()
    poll.cancel()  # the client went away
    assert await within(polling) is None
    assert hub.loaded(ROOM).waiting == 0 and hub.loaded(ROOM).waiters.timers == 0
    gone = hub.poll(ROOM, ANI, now.cursor, now.epoch, 30)
    gone.cancel()  # gone before its wait began: nothing to wait for, nobody to answer
    assert await within(gone) is None
    await hub.store.until(lambda: (hub.store.drafts[-1].type, hub.store.drafts[-1].user) == ("leave", "Ani"))
    assert time.monotonic() - cancelled_at >= GRACE_S  # present for the grace after the client went
    assert await notices(hub) == [("join", "Ani"), ("leave", "Ani")]


@pytest.mark.gen_test
async def test_polls_of_different_waits_each_answer_at_their_own_timeout(hub):
    await hub.touch(ROOM, ANI)  # one session for all three (two tabs): present throughout, no leave wakes them
    now = await hub.read(ROOM, None)
    started = time.monotonic()
    long_wait = asyncio.ensure_future(hub.poll(ROOM, ANI, now.cursor, now.epoch, GRACE_S * 4))
    short_waits = [asyncio.ensure_future(hub.poll(ROOM, ANI, now.cursor, now.epoch, GRACE_S)) for _ in range(2)]
    await asyncio.sleep(0)
    assert hub.loaded(ROOM).waiters.timers == 2
    for answer in await within(asyncio.gather(*short_waits)):  # not held behind the longer wait
        assert answer is not None and answer.events == []
    short_done = time.monotonic()
    assert short_done - started >= GRACE_S and not long_wait.done()
    assert hub.loaded(ROOM).waiting == 1 and hub.loaded(ROOM).waiters.timers == 1
    answer = await within(long_wait)
    assert answer is not None and answer.events == [] and time.monotonic() - started >= GRACE_S * 4
    assert hub.loaded(ROOM).waiting == 0 and hub.loaded(ROOM).waiters.timers == 0


@pytest.mark.gen_test
async def test_a_poll_answers_empty_at_its_timeout(hub):
    await hub.touch(ROOM, ANI)
    now = await hub.read(ROOM, None)
    started = time.monotonic()
    answer = await within(hub.poll(ROOM, ANI, now.cursor, now.epoch, GRACE_S))
    assert time.monotonic() - started >= GRACE_S
    assert answer is not None and answer.events == [] and not answer.truncated
    assert (answer.cursor, answer.epoch) == (now.cursor, now.epoch)  # the client asks again from there


class CountedDeliveries(Metrics):
    """The ``Metrics`` port as ``ops.metrics`` is called: deliveries summed per transport."""

    def __init__(self) -> None:
        self.delivered_by_transport: dict[str, int] = {}

    def delivered(self, transport: str, events: int) -> None:
        self.delivered_by_transport[transport] = self.delivered_by_transport.get(transport, 0) + events


@pytest.mark.gen_test
async def test_deliveries_and_connections_follow_who_is_attached_as_they_come_and_go(io_loop):
    metrics = CountedDeliveries()
    memory = open_backend("memory")
    hub = Hub(memory, HubConfig(presence_grace_s=GRACE_S, rate_limit_per_s=0), metrics)
    await hub.start()
    await hub.create(ROOM)
    try:
        async with contextlib.AsyncExitStack() as stack:
            ani, ani_tab = await connect(stack, hub, ANI)
            _, budi_tab = await connect(stack, hub, BUDI)
            async with contextlib.AsyncExitStack() as gone:
                await connect(gone, hub, CICI)
                await connect(gone, hub, BUDI, label="Budi, second tab")
                assert hub.census().connections == {"recorder": 4}
            assert hub.census().connections == {"recorder": 2}  # the two that left are not counted
            before = dict(metrics.delivered_by_transport)
            await ani.post("satu", "c-1")
            await ani.post("dua", "c-2")
            for tab in (ani_tab, budi_tab):
                await tab.until(lambda tab=tab: "dua" in tab.texts())
            # Two events to the two listeners left: four deliveries, whatever the batches were.
            assert metrics.delivered_by_transport["recorder"] - before.get("recorder", 0) == 4
        assert hub.census().connections == {}
    finally:
        await hub.close()
