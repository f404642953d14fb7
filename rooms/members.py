"""Presence by session, and the two ways a client is in a room live.

:class:`Attendance` holds the rules: a session becomes present at its first
connection or request in a room (the join, announced once) and stays present while
it has a live connection or made a request within the grace period; then it
leaves (announced once), or at once when it says Leave.  The presence store is
asked whether a local change is also a room-wide one (other processes).

:class:`Membership` is a live connection (``async with hub.join(...)``); :class:`Poll`
is one long-poll, live while it waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import validation
from .errors import ChatError, Forbidden, Left, NameTaken, NoSuchRoom, Unavailable
from .models import Draft, Event, Payload, Session, Slice
from .ports import Ending, Listener
from .presence import Member, name_taken
from .room import Room

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger("obrolan.hub")

# A transport's way to send a long-poll's answer at once: (the Slice, who is typing, what the
# polls of one wake share) -> whether it was sent.
Answer = Callable[[Slice, list[str], dict[Any, Any]], bool]


class Attendance:
    """Who is present in the hub's rooms, and the announcements of it."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._polls = 0  # long-polls in progress: close() waits until each is answered
        self._polls_idle: asyncio.Future[None] | None = None

    @property
    def grace_s(self) -> float:
        return self.hub.config.presence_grace_s

    async def restore(self, present: dict[str, list[Session]]) -> None:
        """At start: the sessions present before a restart stay present for the grace period;
        those who come back are not announced again, the others leave once."""
        now = time.monotonic()
        for name, sessions in present.items():
            room = await self.hub.room(name, create=True)
            for session in sessions:
                try:
                    member, _new = room.presence.add(session, now)
                except NameTaken:
                    continue  # two stored sessions of one name: the first one stays
                self.rest(room, member)

    # -- arriving and resting ---------------------------------------------------------

    async def arrive(self, room: Room, session: Session) -> Member:
        """The session's member, made present (the join announced once) if it was not."""
        leaving = room.leaving.get(session.sid)
        if leaving is not None:  # its leave is being announced: that comes first, then a new join
            await asyncio.shield(leaving)
        self.check(room, session)
        member, new = room.presence.add(session, time.monotonic())
        if new:
            try:
                joined = await self.hub.presence.joined(room.name, session)  # False: present elsewhere
            except ChatError:
                room.presence.remove(member)
                raise
            if joined:
                await self.announce(room, "join", session)
        return member

    def rest(self, room: Room, member: Member) -> None:
        """A request or the member's connection ended now: present for the grace period more."""
        member.seen_at = time.monotonic()
        if member.live == 0 and member.timer is None and not self.hub.closing \
                and room.presence.member_of(member.session) is member:
            member.timer = asyncio.get_running_loop().call_later(self.grace_s, self._grace_over, room, member)

    def _grace_over(self, room: Room, member: Member) -> None:
        member.timer = None
        if member.live or self.hub.closing or room.presence.member_of(member.session) is not member:
            return
        remaining_s = member.seen_at + self.grace_s - time.monotonic()
        if remaining_s > 0:  # a request came meanwhile: look again when its grace ends
            member.timer = asyncio.get_running_loop().call_later(remaining_s, self._grace_over, room, member)
            return
        room.presence.remove(member)
        room.typing_at.pop(member.session.sid, None)
        sid = member.session.sid
        room.leaving[sid] = asyncio.get_running_loop().create_future()
        self.hub.spawn(self._leave_after_grace(room, member.session))

    async def _leave_after_grace(self, room: Room, session: Session) -> None:
        try:
            if await self.hub.presence.expired(room.name, session):  # False: still present elsewhere
                await self.announce(room, "leave", session)
        finally:
            done = room.leaving.pop(session.sid, None)
            if done is not None and not done.done():
                done.set_result(None)

    # -- names, users, leaving ----------------------------------------------------------

    def check(self, room: Room, session: Session) -> None:
        room.presence.check(session)
        self.hub.presence.check(room.name, session)

    async def present_room(self, name: str) -> Room | None:
        """The room if anyone can be present in it: loaded here, or (presence shared between
        processes) loaded now, since its members may all be connected through other processes."""
        room = self.hub.loaded(name)
        if room is None and self.hub.presence.shared:
            room = await self.hub.room(name)
        return room

    async def check_name(self, name: str, session: Session) -> None:
        """As far as it can be checked: if the shared presence is unreachable the name passes
        here, and the connection or request checks it again when it arrives."""
        try:
            room = await self.present_room(name)
        except (Unavailable, NoSuchRoom):
            return
        if room is not None:
            self.check(room, session)

    def users_of(self, room: Room) -> list[str]:
        shared = self.hub.presence.users(room.name)
        return room.presence.users() if shared is None else shared

    async def leave(self, name: str, session: Session) -> bool:
        room = await self.present_room(name)
        member = room.presence.member_of(session) if room else None
        if room is None or not await self.hub.presence.left(name, session, member is not None):
            return False
        self.drop(room, session)
        await self.announce(room, "leave", session)
        return True

    def drop(self, room: Room, session: Session) -> None:
        """Remove the session's member here and end its listeners in the room."""
        member = room.presence.member_of(session)
        if member is None:
            return
        room.presence.remove(member)
        room.typing_at.pop(session.sid, None)
        for listener in tuple(member.listeners):
            room.listeners.discard(listener)
            listener.end(Ending.LEFT)
        member.listeners.clear()
        for poll in tuple(member.polls):
            poll.end_left()
        member.polls.clear()

    async def announce(self, room: Room, kind: str, session: Session) -> None:
        """Store and publish a join/leave event: members apply it to their user lists."""
        try:
            await self.hub.commit(room, Draft(kind, room.name, session.name, None, session.sid))
        except ChatError as exc:  # the store is failing: presence still changes, with no event to say so
            log.warning("could not store %s of %s in %s: %s", kind, session.name, room.name, exc.detail)
            room.broadcast(self.hub.users_payload(room))

    # -- long-polls in progress ----------------------------------------------------------

    def poll_started(self) -> None:
        self._polls += 1

    def poll_ended(self) -> None:
        self._polls -= 1
        if self._polls == 0 and self._polls_idle is not None and not self._polls_idle.done():
            self._polls_idle.set_result(None)

    async def polls_answered(self, timeout_s: float) -> None:
        if not self._polls:
            return
        self._polls_idle = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._polls_idle), timeout_s)
        except TimeoutError:
            log.warning("%d long-polls were not answered in time", self._polls)


class Membership:
    """A live connection of a session in a room; ``async with hub.join(...) as m``.

    Entering makes the session present (a join if it was not); leaving the block
    (or :meth:`close`, whichever comes first) ends it and starts the grace period.
    """

    __slots__ = ("closed", "hub", "listener", "member", "name", "room", "session")

    def __init__(self, hub: Hub, name: str, session: Session, listener: Listener) -> None:
        self.hub = hub
        self.name = name
        self.session = session
        self.listener = listener
        self.room: Room | None = None
        self.member: Member | None = None
        self.closed = False

    async def __aenter__(self) -> Membership:
        room = await self.hub.room(self.name)
        member = await self.hub.attendance.arrive(room, self.session)
        member.live += 1
        self.room, self.member = room, member
        return self

    async def __aexit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening; the session stays present for the grace period."""
        if self.closed or self.room is None or self.member is None:
            return
        self.closed = True
        self.room.listeners.discard(self.listener)
        self.member.listeners.discard(self.listener)
        self.member.live -= 1
        self.hub.attendance.rest(self.room, self.member)

    async def attach(self, after: int | None, epoch: str | None) -> Slice | None:
        """Replay what the client missed and start broadcasting to the listener, with no gap.

        Returns the replay (every event after ``after`` however many, or the tail), or
        None if the connection closed meanwhile.
        """
        hub, room = self.hub, self.room
        assert room is not None and self.member is not None, "attach() inside async with"
        first = await hub.read(self.name, after, epoch)
        events, cursor = list(first.events), first.cursor
        while not self.closed and cursor < room.buffer.last_id:
            more = await hub.read(self.name, cursor, first.epoch)
            if more.truncated:  # fell out of history while we read: give the tail honestly
                first, events, cursor = more, list(more.events), more.cursor
                continue
            events.extend(more.events)
            cursor = more.cursor
        if self.closed or room.presence.member_of(self.session) is not self.member:
            return None
        # No await between the last read and this line: nothing can slip in between.
        room.flush()  # broadcasts still queued are in the replay: the listener must not get them twice
        room.listeners.add(self.listener)
        self.member.listeners.add(self.listener)
        return Slice(events, cursor, first.epoch, first.truncated)

    def users_payload(self) -> Payload:
        assert self.room is not None
        return self.hub.users_payload(self.room)

    async def post(self, text: object, client_id: object) -> Event:
        """Send a message as this connection's session; the event (the first one, for a retry)."""
        room = self.room
        if self.closed or room is None:
            raise Forbidden("this connection is closed")
        clean = validation.clean_text(text, self.hub.config.max_message_chars)
        event, _created = await self.hub.send(room, self.session, clean, validation.clean_client_id(client_id))
        return event

    def reply(self, payload: Payload) -> None:
        """To this connection alone, after the broadcasts it is about to get."""
        if self.room is not None and not self.closed:
            self.room.reply(self.listener, payload)

    def typing(self) -> bool:
        return self.hub.typing(self.name, self.session)


class Poll:
    """One long-poll.  ``await`` it: the events after the cursor (waiting up to ``wait_s``
    for some), or None once :meth:`cancel` was called (the client went away).

    The session is present while the poll is in progress and for the grace period after,
    so a client that polls again and again never leaves and never joins again.

    With ``answer`` (the transport's: ``answer(slice, typing, shared) -> sent``), a waiting poll
    is answered by the room's wake itself when the buffer holds the answer: the polls of one
    wake go out one after the other in one loop, each ``answer`` reusing the bytes the first one
    made (``shared``), and the ``await`` then returns the Slice already sent (:attr:`sent`).
    """

    __slots__ = ("_answer_now", "_room", "_waiter", "after", "cancelled", "epoch", "hub", "left", "limit",
                 "name", "sent", "session", "wait_s")

    def __init__(self, hub: Hub, name: str, session: Session, after: int | None, epoch: str | None,
                 wait_s: float, limit: int, answer: Answer | None = None) -> None:
        self.hub, self.name, self.session = hub, name, session
        self.after, self.epoch, self.wait_s, self.limit = after, epoch, wait_s, limit
        self.cancelled = False
        self.left = False  # the session left the room meanwhile (here or in another tab)
        self.sent: Slice | None = None  # what ``answer`` sent at the wake
        self._answer_now = answer
        self._room: Room | None = None
        self._waiter: asyncio.Future[None] | None = None

    def __await__(self) -> Generator[Any, None, Slice | None]:
        return self._run().__await__()

    def cancel(self) -> None:
        self.cancelled = True
        if self._waiter is not None:
            self._waiter.cancel()

    def end_left(self) -> None:
        self.left = True
        if self._waiter is not None:
            self._waiter.cancel()

    async def _run(self) -> Slice | None:
        hub, attendance = self.hub, self.hub.attendance
        room = await hub.room(self.name)
        member = await attendance.arrive(room, self.session)
        member.live += 1
        member.polls.add(self)
        attendance.poll_started()
        try:
            answer = await self._answer(room)
            if self.left and self.sent is None:  # told over its live request, as a WebSocket is by its close
                raise Left()
            return answer
        finally:
            member.live -= 1
            member.polls.discard(self)
            attendance.rest(room, member)
            attendance.poll_ended()

    async def _answer(self, room: Room) -> Slice | None:
        hub, after = self.hub, self.after
        sl = await hub.read(self.name, after, self.epoch, self.limit)
        if after is None or sl.events or sl.truncated or self.wait_s <= 0:
            return sl
        if self.cancelled:
            return None
        if not hub.closing and room.buffer.last_id <= after:  # no await since that check: nothing missed
            self._room = room
            ready = self._at_wake if self._answer_now is not None else None
            self._waiter = waiter = room.wait(self.wait_s, ready, self.session.name)
            try:
                await waiter
            except asyncio.CancelledError:
                return None  # the client went away, or the session left (see _run)
            finally:
                room.unwait(waiter)
            if self.sent is not None:
                return self.sent
        return await hub.read(self.name, after, self.epoch, self.limit)

    def _at_wake(self, shared: dict[Any, Any]) -> None:
        """The room woke (rooms/waiters.py): answer now if the buffer holds the answer, with
        the Slice the polls of this wake at the same cursor share; else the task reads it."""
        assert self._room is not None and self._answer_now is not None and self.after is not None
        key = ("slice", self.after, self.epoch, self.limit)
        sl = shared.get(key, False)
        if sl is False:
            sl = shared[key] = self._room.read_held(self.after, self.epoch, self.limit)
        if sl is None:
            return
        everyone = shared.get("typing")  # who is typing: once per wake, then left out per reader
        if everyone is None:
            everyone = shared["typing"] = self.hub.typing_in(self._room)
        name = self.session.name
        typing = [user for user in everyone if user != name] if name in everyone else everyone
        if self._answer_now(sl, typing, shared):
            self.sent = sl


__all__ = ["Attendance", "Membership", "Poll", "name_taken"]
