"""Presence by session (rooms.members.Attendance): one join when a session first shows up in a
room, whatever the transport and however many connections; one leave, after the grace period with
nothing live or at once on Leave; names that clash; shutdown and restart are not leaves."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from rooms import Ending, Hub, Session
from rooms.errors import Forbidden, NameTaken
from tests.unit.fakes import GRACE_S, ROOM, Recorder, connect, notices, within

ANI = Session("sid-ani", "Ani")
BUDI = Session("sid-budi", "Budi")
CICI = Session("sid-cici", "Cici")
QUIET_S = 2 * GRACE_S  # long enough for a leave that should not come to have come


def stored(hub: Hub, kind: str) -> list[str]:
    """Users of the joins or leaves the hub asked the store to append."""
    return [d.user for d in hub.store.drafts if d.type == kind]


@pytest.mark.gen_test
async def test_a_first_request_announces_one_join_and_later_ones_nothing(hub):
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        await hub.touch(ROOM, BUDI)  # e.g. the room page
        await hub.touch(ROOM, BUDI)
        event, created = await hub.post(ROOM, BUDI, "halo")
        assert created and event.user == "Budi"
        assert await notices(hub) == [("join", "Ani"), ("join", "Budi")]
        assert await hub.users(ROOM) == ["Ani", "Budi"]
        await watch.until(lambda: watch.texts() == ["halo"])
        assert [(e["type"], e["user"]) for e in watch.events()] == [("join", "Budi"), ("message", "Budi")]
        assert watch.users() == ["Ani", "Budi"]


@pytest.mark.gen_test
async def test_a_first_connection_announces_one_join_and_more_connections_nothing(hub):
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        await connect(stack, hub, BUDI)
        await connect(stack, hub, BUDI)  # a second tab
        assert await hub.poll(ROOM, BUDI, None, None, 0) is not None  # and a long-poll
        await hub.touch(ROOM, BUDI)  # and a page view
        assert await notices(hub) == [("join", "Ani"), ("join", "Budi")]
        assert await hub.users(ROOM) == ["Ani", "Budi"]
        await watch.until(lambda: watch.users() == ["Ani", "Budi"])
        assert len(watch.events("join", "Budi")) == 1


@pytest.mark.gen_test
async def test_the_leave_comes_once_after_the_grace_when_nothing_is_live(hub):
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        first, _ = await connect(stack, hub, BUDI)
        async with contextlib.AsyncExitStack() as second_tab:
            await connect(second_tab, hub, BUDI)
            first.close()
            # One connection is still open: the grace does not even start.
            await watch.quiet(lambda: watch.events("leave"), QUIET_S)
            assert await hub.users(ROOM) == ["Ani", "Budi"]
            closed_at = time.monotonic()  # the last connection ends as the block does
        await watch.until(lambda: watch.events("leave"))
        assert time.monotonic() - closed_at >= GRACE_S
        await watch.quiet(lambda: len(watch.events("leave")) > 1, QUIET_S)
        assert [e["user"] for e in watch.events("leave")] == ["Budi"]
        assert watch.users() == ["Ani"] and await hub.users(ROOM) == ["Ani"]
        assert await notices(hub) == [("join", "Ani"), ("join", "Budi"), ("leave", "Budi")]


@pytest.mark.gen_test
async def test_a_long_poll_in_progress_keeps_the_session_present(hub):
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        first = await hub.poll(ROOM, BUDI, None, None, 0)  # joins, answered at once
        assert first is not None and [e.type for e in first.events][-1] == "join"
        started = time.monotonic()
        polling = asyncio.ensure_future(hub.poll(ROOM, BUDI, first.cursor, first.epoch, QUIET_S))
        # Longer than the grace with nothing but that poll: no leave.
        await watch.quiet(lambda: watch.events("leave"), QUIET_S / 2)
        answer = await within(polling)
        assert answer is not None and answer.events == [] and answer.cursor == first.cursor
        await watch.until(lambda: watch.events("leave", "Budi"))
        assert time.monotonic() - started >= QUIET_S + GRACE_S  # the poll's wait, then the grace
        assert await notices(hub) == [("join", "Ani"), ("join", "Budi"), ("leave", "Budi")]


@pytest.mark.hub(presence_grace_s=0.2)
@pytest.mark.gen_test
async def test_a_request_within_the_grace_postpones_the_leave(hub):
    grace_s = hub.config.presence_grace_s
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        async with contextlib.AsyncExitStack() as budi_tab:
            await connect(budi_tab, hub, BUDI)
        # The scenario's clock, not a synchronisation: a third of the grace goes by before Budi's
        # next request (a page view, a post).
        await asyncio.sleep(grace_s / 3)
        assert await hub.users(ROOM) == ["Ani", "Budi"], "the machine stalled for the whole grace"
        touched_at = time.monotonic()
        await hub.touch(ROOM, BUDI)
        await watch.until(lambda: watch.events("leave", "Budi"))
        assert time.monotonic() - touched_at >= grace_s  # counted from the request, not the disconnect
        assert await notices(hub) == [("join", "Ani"), ("join", "Budi"), ("leave", "Budi")]


@pytest.mark.gen_test
async def test_a_request_racing_the_end_of_the_grace_never_leaves_a_present_user_announced_as_gone(hub):
    """The grace timer and Budi's next request come due in one loop iteration (the loop was busy),
    the request first.  Whichever way the hub takes it, Budi's joins and leaves must alternate: a
    leave stored after the join it answers would tell the room he left while he is present."""
    async with contextlib.AsyncExitStack() as stack:
        await connect(stack, hub, BUDI)  # and gone: his grace timer is due in GRACE_S
    loop = asyncio.get_running_loop()
    request: asyncio.Future[asyncio.Future[None]] = loop.create_future()
    loop.call_later(GRACE_S / 2, lambda: request.set_result(asyncio.ensure_future(hub.touch(ROOM, BUDI))))
    loop.call_soon(time.sleep, 2 * GRACE_S)  # a busy loop: when it looks again, both are due
    await within(await within(request))

    def gone_for_good() -> bool:
        drafts = hub.store.drafts
        return drafts[-1].type == "leave" and "Budi" not in hub.attendance.users_of(hub.loaded(ROOM))
    await hub.store.until(gone_for_good)
    kinds = [kind for kind, _ in await notices(hub)]
    assert kinds == ["join", "leave"] * (len(kinds) // 2), kinds


@pytest.mark.gen_test
async def test_leave_is_announced_once_at_once_and_ends_every_connection_of_the_session(hub):
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        async with contextlib.AsyncExitStack() as budi_tabs:
            tab, first = await connect(budi_tabs, hub, BUDI)
            _, second = await connect(budi_tabs, hub, BUDI)
            assert await hub.leave(ROOM, BUDI) is True
            assert first.ended == [Ending.LEFT] and second.ended == [Ending.LEFT]
            assert await notices(hub) == [("join", "Ani"), ("join", "Budi"), ("leave", "Budi")]
            assert await hub.users(ROOM) == ["Ani"]
            assert await hub.leave(ROOM, BUDI) is False  # gone already: nothing more to say
            with pytest.raises(Forbidden):
                await tab.post("masih di sini?", None)
        # The transports close those connections: that is no second leave, after the grace either.
        await watch.until(lambda: watch.events("leave"))
        await watch.quiet(lambda: len(watch.events("leave")) > 1, QUIET_S)
        assert watch.ended == [] and watch.users() == ["Ani"]
        assert stored(hub, "leave") == ["Budi"]
        await connect(stack, hub, BUDI)  # coming back is a new join
        assert (await notices(hub))[-1] == ("join", "Budi")


@pytest.mark.gen_test
async def test_a_name_present_under_another_session_is_taken(hub):
    other = Session("sid-other", "BUDI")  # names clash casefolded
    await hub.touch(ROOM, BUDI)
    for attempt in (lambda: hub.touch(ROOM, other), lambda: hub.post(ROOM, other, "aku Budi"),
                    lambda: hub.check_name(ROOM, other), lambda: hub.poll(ROOM, other, None, None, 0)):
        with pytest.raises(NameTaken):
            await attempt()
    with pytest.raises(NameTaken):
        async with hub.join(ROOM, other, Recorder()):
            pytest.fail("joined under a name in use")
    await hub.check_name(ROOM, BUDI)  # the same session: its own name is no clash
    zoe, zoe_decomposed = Session("sid-zoe", "Zoë"), Session("sid-zoe2", "ZOE\u0308")  # and NFC-normalised
    await hub.touch(ROOM, zoe)
    with pytest.raises(NameTaken):
        await hub.touch(ROOM, zoe_decomposed)
    assert await hub.users(ROOM) == ["Budi", "Zoë"]
    assert await notices(hub) == [("join", "Budi"), ("join", "Zoë")]
    assert await hub.leave(ROOM, BUDI)
    await hub.touch(ROOM, other)  # free once its owner left
    assert await hub.users(ROOM) == ["BUDI", "Zoë"]


@pytest.mark.gen_test
async def test_close_ends_every_listener_answers_polls_and_announces_no_leave(hub):
    dewi = Session("sid-dewi", "Dewi")
    async with contextlib.AsyncExitStack() as stack:
        _, watch = await connect(stack, hub, ANI)
        _, budi = await connect(stack, hub, BUDI)
        await hub.touch(ROOM, dewi)
        async with contextlib.AsyncExitStack() as cici_tab:  # Cici is in her grace when the server stops
            await connect(cici_tab, hub, CICI)
        newest = await hub.read(ROOM, None)
        polling = asyncio.ensure_future(hub.poll(ROOM, dewi, newest.cursor, newest.epoch, 30))
        await asyncio.sleep(0)  # one loop iteration: the poll reads, finds nothing and waits
        assert hub.loaded(ROOM).waiting == 1
        appended = len(hub.store.drafts)
        await hub.close()
        assert watch.ended == [Ending.SHUTDOWN] and budi.ended == [Ending.SHUTDOWN]
        answer = await within(polling)
        assert answer is not None and answer.events == []  # answered, not left hanging
    # Cici's grace runs out, the connections end: a restart within the grace is no leave.
    await hub.store.quiet(lambda: len(hub.store.drafts) > appended, QUIET_S)
    assert stored(hub, "leave") == []


@pytest.mark.gen_test
async def test_a_restored_session_is_present_without_a_join_and_leaves_once_after_the_grace(hub):
    restored_at = time.monotonic()
    await hub.attendance.restore({ROOM: [BUDI]})  # as at start: the store said Budi was present
    assert await hub.users(ROOM) == ["Budi"]
    assert await notices(hub) == []
    await hub.store.until(lambda: stored(hub, "leave"))
    assert time.monotonic() - restored_at >= GRACE_S
    await hub.store.quiet(lambda: len(stored(hub, "leave")) > 1, QUIET_S)
    assert await notices(hub) == [("leave", "Budi")] and await hub.users(ROOM) == []


@pytest.mark.gen_test
async def test_a_restored_session_that_connects_within_the_grace_is_not_announced(hub):
    await hub.attendance.restore({ROOM: [BUDI]})
    async with contextlib.AsyncExitStack() as stack:
        _, tab = await connect(stack, hub, BUDI)  # back right after the restart
        await hub.store.quiet(lambda: hub.store.drafts, QUIET_S)  # the grace passes while connected
        assert await hub.users(ROOM) == ["Budi"] and tab.ended == []
        closed_at = time.monotonic()  # the connection ends as the block does
    await hub.store.until(lambda: stored(hub, "leave"))  # gone for good: one leave, after the grace
    assert time.monotonic() - closed_at >= GRACE_S
    assert await notices(hub) == [("leave", "Budi")]
