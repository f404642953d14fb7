"""The hub: rooms, their buffers, presence, waiters and the one publish path.

It never sees a request.  Handlers authenticate, parse and serialise, and talk to
the hub through a narrow surface:

* ``async with hub.join(room, session, listener) as m`` for a live connection
  (a WebSocket, a stream): ``m.attach(after, epoch)``, ``m.post(...)``, ``m.reply(...)``;
* ``await hub.poll(room, session, after, epoch, wait_s)`` for one long-poll;
* ``hub.touch`` / ``hub.post`` / ``hub.leave`` / ``hub.typing`` for requests, and the reads.

Every committed event takes one route: the store appends it, the broker publishes
it (the local broker straight back to :meth:`Hub.deliver`; Redis to every process),
and :meth:`Hub.deliver` buffers, broadcasts and wakes.  Presence rules are in
:mod:`rooms.members`; the seams to backends in :mod:`rooms.ports`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from json import loads
from typing import Any

from . import validation
from .buffer import RoomBuffer
from .errors import ChatError, Forbidden, NoSuchRoom, NotReady
from .members import Answer, Attendance, Membership, Poll
from .models import Draft, Event, Page, Payload, RoomState, Session, Slice, dumps, presence_payload
from .ports import NO_METRICS, Backend, Ending, Listener, Metrics
from .ratelimit import TokenBucketLimiter
from .room import Room

log = logging.getLogger("obrolan.hub")

TAIL_EVENTS = 50  # "the last 50": what a fresh client or a truncated answer gets
READ_LIMIT_MAX = 1000  # events in one answer; the client continues from the cursor
ROOM_SWEEP_INTERVAL_S = 30.0
SHUTDOWN_POLL_ANSWER_S = 2.0  # close() waits this long at most for woken long-polls to be answered
SHUTDOWN_TASKS_S = 2.0  # then this long at most for background announcements (leaves) to finish
READY_CHECK_TIMEOUT_S = 2.0  # a store that takes longer to answer a ping is not ready
TYPING_MIN_INTERVAL_S = 2.0  # "is typing" notices per session and room, at most one per interval
# A long-poll answer names who sent a typing notice this recently (a typist sends one every
# TYPING_MIN_INTERVAL_S, so a name stays listed while they type, and a little after).
TYPING_FRESH_S = 4.0


@dataclass
class HubConfig:
    buffer_size: int = 1000  # events held in memory per room
    presence_grace_s: float = 10.0
    rate_limit_per_s: float = 5.0
    rate_burst: int = 10  # messages a session may send at once before the rate applies
    max_message_chars: int = validation.TEXT_MAX_CHARS_DEFAULT
    room_idle_s: float = 300.0


@dataclass(frozen=True)
class Census:
    rooms_loaded: int
    connections: dict[str, int]  # live listeners by transport ("websocket", "stream")
    longpolls_waiting: int
    room_members: list[int]  # members present through this process, per loaded room


class Hub:
    def __init__(self, backend: Backend, config: HubConfig | None = None, metrics: Metrics = NO_METRICS) -> None:
        self.metrics = metrics
        self.store = backend.store
        self.broker = backend.broker
        self.presence = backend.presence
        self.config = config or HubConfig()
        self.limiter = TokenBucketLimiter(self.config.rate_limit_per_s, self.config.rate_burst)
        self.attendance = Attendance(self)
        self._rooms: dict[str, Room] = {}
        self._opening: dict[str, asyncio.Future[Room]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.closing = False

    # -- life cycle -------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        await self.presence.start(self)
        await self.broker.start(self)
        await self.attendance.restore(await self.store.present())
        self._schedule_sweep()

    async def close(self) -> None:
        """Answer every waiter, end every listener, flush the store.  Nobody leaves: a restart
        within the grace period is not a leave (the store remembers who is present)."""
        self.closing = True
        if self._sweeper:
            self._sweeper.cancel()
        for room in self._rooms.values():
            room.wake()
            room.flush()  # what was broadcast goes out before the listeners end
            for listener in tuple(room.listeners):
                listener.end(Ending.SHUTDOWN)
            for member in room.presence.members.values():
                member.cancel_timer()
        await self.attendance.polls_answered(SHUTDOWN_POLL_ANSWER_S)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=SHUTDOWN_TASKS_S)
        await self.broker.close()
        await self.presence.close()
        await self.store.close()

    def census(self) -> Census:
        """What is loaded and connected now, for gauges read when metrics are scraped."""
        connections: dict[str, int] = {}
        waiting = 0
        members: list[int] = []
        for room in self._rooms.values():
            waiting += room.waiting
            members.append(len(room.presence.members))
            for transport, count in room.listeners.by_transport.items():
                connections[transport] = connections.get(transport, 0) + count
        return Census(len(self._rooms), connections, waiting, members)

    async def check_ready(self) -> None:
        """Return if this process should get traffic; raise NotReady with the reason if not.

        Shutting down is not ready even though the store may answer: a balancer that sees it
        sends new clients elsewhere while this process finishes its own."""
        if self.closing:
            raise NotReady("shutting down")
        try:
            await asyncio.wait_for(self.store.ping(), READY_CHECK_TIMEOUT_S)
        except TimeoutError:
            raise NotReady(f"the store did not answer within {READY_CHECK_TIMEOUT_S:g} s") from None
        except ChatError as exc:
            raise NotReady(f"the store does not answer: {exc.detail}") from None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background; close() waits a little for what is left."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule_sweep(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(ROOM_SWEEP_INTERVAL_S, self.sweep)

    def sweep(self) -> None:
        """Drop idle empty rooms from memory and forget full rate-limit buckets."""
        now = time.monotonic()
        for name, room in list(self._rooms.items()):
            if room.idle() and now - room.active_at > self.config.room_idle_s:
                del self._rooms[name]
                self.store.forget_room(name)
                self.broker.release(name)
        self.limiter.sweep()
        if not self.closing:
            self._schedule_sweep()

    # -- rooms ----------------------------------------------------------------

    async def room(self, name: str, create: bool = False) -> Room:
        """The loaded room; NoSuchRoom if nobody ever joined it, unless ``create`` (a join)."""
        room = self._rooms.get(name)
        if room is not None:
            return room
        pending = self._opening.get(name)
        if pending is not None:
            try:
                return await asyncio.shield(pending)
            except NoSuchRoom:
                if not create:
                    raise
                return await self.room(name, create=True)
        future: asyncio.Future[Room] = asyncio.get_running_loop().create_future()
        self._opening[name] = future
        try:
            await self.broker.hold(name)  # subscribed before reading the state: nothing slips between
            state = await self.store.open_room(name, self.config.buffer_size, create)
            if not state.exists:
                raise NoSuchRoom(f"there is no room {name!r}: join it first (POST /join creates it)")
            room = Room(name, self._buffer(state), metrics=self.metrics)
            self._rooms[name] = room
            future.set_result(room)
            return room
        except BaseException as exc:
            self.broker.release(name)
            future.set_exception(exc)
            future.exception()  # retrieved: concurrent openers re-raise it themselves
            raise
        finally:
            del self._opening[name]

    def _buffer(self, state: RoomState) -> RoomBuffer:
        return RoomBuffer(state.epoch, state.last_id, state.recent, self.config.buffer_size)

    def loaded(self, name: str) -> Room | None:
        return self._rooms.get(name)

    async def rooms_info(self) -> list[dict[str, object]]:
        """Rooms known to the store or in memory, busiest first."""
        infos = {info.room: info for info in await self.store.list_rooms()}
        out = []
        for name in set(infos) | set(self._rooms):
            room = self._rooms.get(name)
            info = infos.get(name)
            last = room.buffer.tail(1) if room else []
            last_ts = last[0].ts if last else (info.last_ts if info else None)
            if last_ts is None:
                continue  # nothing ever said or done there
            users = len(self.attendance.users_of(room)) if room else 0
            out.append({"room": name, "users": users, "last_activity": last_ts})
        out.sort(key=lambda r: (int(str(r["users"])), str(r["last_activity"])), reverse=True)
        return out

    # -- the handlers' surface ------------------------------------------------------

    def join(self, name: str, session: Session, listener: Listener) -> Membership:
        """``async with hub.join(...) as m``: a live connection, present until the block ends."""
        return Membership(self, name, session, listener)

    def poll(self, name: str, session: Session, after: int | None, epoch: str | None,
             wait_s: float, limit: int = READ_LIMIT_MAX, answer: Answer | None = None) -> Poll:
        """One long-poll: ``await`` it for a Slice (None once cancelled); ``cancel()`` when the
        client goes.  ``answer``, if given, may send the Slice at once when the room wakes (see
        :class:`~rooms.members.Poll`)."""
        return Poll(self, name, session, after, epoch, wait_s, limit, answer)

    async def create(self, name: str) -> None:
        """A join: the room exists from now on (reading a room nobody joined is NoSuchRoom)."""
        await self.room(name, create=True)

    async def touch(self, name: str, session: Session) -> None:
        """A request of ``session`` in room ``name`` (a page view): present for the grace period."""
        room = await self.room(name)
        self.attendance.rest(room, await self.attendance.arrive(room, session))

    async def users(self, name: str) -> list[str]:
        return self.attendance.users_of(await self.room(name))

    async def check_name(self, name: str, session: Session) -> None:
        """Raise NameTaken if ``session``'s name is present in room ``name`` under another session."""
        await self.attendance.check_name(name, session)

    async def leave(self, name: str, session: Session) -> bool:
        """Leave now: announce it and end the session's listeners in the room."""
        return await self.attendance.leave(name, session)

    def users_payload(self, room: Room) -> Payload:
        return presence_payload(self.attendance.users_of(room))

    # -- reading ----------------------------------------------------------------

    async def read(self, name: str, after: int | None, epoch: str | None = None,
                   limit: int = READ_LIMIT_MAX) -> Slice:
        """Exactly the events after ``after``, or the tail with ``truncated=True``."""
        room = await self.room(name)
        buf = room.buffer
        if after is None:
            return Slice(buf.tail(TAIL_EVENTS), buf.last_id, buf.epoch, False)
        if (epoch is not None and epoch != buf.epoch) or after > buf.last_id:
            await self.broker.catch_up(name)  # another process may have stored what the cursor names
            buf = room.buffer
        if (epoch is not None and epoch != buf.epoch) or after > buf.last_id:
            return self._truncated(room)
        held = room.read_held(after, epoch, limit)
        if held is not None:
            return held
        stored = await self.store.read_after(name, after, limit)
        if not stored or stored[0].id != after + 1:
            return self._truncated(room)
        # The store may hold commits not yet published here: hand out only what the buffer has
        # seen, or a reader attached now would get those events again live (or a cursor past it).
        published = room.buffer.last_id
        events = [e for e in stored if e.id <= published]
        return Slice(events, events[-1].id if events else after, buf.epoch, False)

    @staticmethod
    def _truncated(room: Room) -> Slice:
        buf = room.buffer
        return Slice(buf.tail(TAIL_EVENTS), buf.last_id, buf.epoch, True)

    async def read_before(self, name: str, before: int | None, limit: int) -> tuple[list[Event], str]:
        """The ``limit`` newest events older than ``before`` (the newest when absent)."""
        room = await self.room(name)
        buf = room.buffer
        before = buf.last_id + 1 if before is None else before
        held = buf.before(before, limit)
        if len(held) < limit and buf.first_id > 1:
            older = await self.store.read_before(name, held[0].id if held else min(before, buf.first_id),
                                                 limit - len(held))
            held = older + held
        return held, buf.epoch

    async def page(self, name: str, before: int | None, limit: int) -> Page:
        """:meth:`read_before`, saying whether the walk back can go on or history was cut."""
        events, epoch = await self.read_before(name, before, limit)
        if events:
            start = events[0].id
        else:
            newest = (await self.room(name)).buffer.last_id
            start = newest + 1 if before is None else min(before, newest + 1)
        older = start > 1  # ids start at 1: anything below start existed once
        full = len(events) == limit
        return Page(events, epoch, has_more=older and full, truncated=older and not full)

    # -- writing ----------------------------------------------------------------

    async def post(self, name: str, session: Session, text: object,
                   client_id: object = None) -> tuple[Event, bool]:
        """A request that sends a message: the sender is present (joined first if it was not),
        then the message is stored and published; ``(event, created)`` (False: a retry)."""
        text = validation.clean_text(text, self.config.max_message_chars)
        client_id = validation.clean_client_id(client_id)
        room = await self.room(name)
        self.attendance.rest(room, await self.attendance.arrive(room, session))
        return await self.send(room, session, text, client_id)

    async def send(self, room: Room, session: Session, text: str, client_id: str | None) -> tuple[Event, bool]:
        """A validated message of a present session: rate-limited, stored, published."""
        if room.presence.member_of(session) is None:
            raise Forbidden("you are not in this room (you left it); join again to send")
        self.limiter.take(session.sid)
        # Sending ends a burst of typing: the next keystroke's notice goes out at once, not up to
        # TYPING_MIN_INTERVAL_S later (readers dropped "is typing" when the message arrived).
        room.typing_at.pop(session.sid, None)
        return await self.commit(room, Draft("message", room.name, session.name, text, session.sid, client_id))

    async def commit(self, room: Room, draft: Draft) -> tuple[Event, bool]:
        """Store ``draft`` and publish it, even if our caller is cancelled meanwhile: a committed
        event missing from the buffer would hold back every later one."""
        room.writing += 1
        return await asyncio.shield(asyncio.ensure_future(self._store_and_publish(room, draft)))

    async def _store_and_publish(self, room: Room, draft: Draft) -> tuple[Event, bool]:
        try:
            started = time.monotonic() if self.metrics is not NO_METRICS else 0.0
            event, created = await self.store.append(draft)
            if self.metrics is not NO_METRICS:
                self.metrics.store_appended(time.monotonic() - started)
            if created:
                self.broker.publish(room.name, event)
                self.metrics.event_stored(event.type)  # here only: other processes relay, not count
            return event, created
        finally:
            room.writing -= 1

    def typing(self, name: str, session: Session) -> bool:
        """Broadcast an ephemeral "is typing" notice: never stored, never given an id.

        Only a present member may send one; more than one per TYPING_MIN_INTERVAL_S is dropped.
        """
        room = self._rooms.get(name)
        if room is None or room.presence.member_of(session) is None:
            return False
        now = time.monotonic()
        if now - room.typing_at.get(session.sid, -TYPING_MIN_INTERVAL_S) < TYPING_MIN_INTERVAL_S:
            return False
        room.typing_at[session.sid] = now
        self.broker.relay(name, Payload(dumps({"type": "typing", "user": session.name})))
        return True

    async def typists(self, name: str, session: Session) -> list[str]:
        """Who is typing in room ``name`` now, but ``session`` (for a long-poll answer)."""
        return self.typing_in(await self.room(name), but=session.name)

    @staticmethod
    def typing_in(room: Room, but: str | None = None) -> list[str]:
        """Who is typing in ``room`` now (``but`` a reader's name)."""
        return room.typing_now(TYPING_FRESH_S, but)

    # -- what a broker or presence store calls (rooms.ports.Core) ----------------------

    def deliver(self, name: str, event: Event) -> int | None:
        room = self._rooms.get(name)
        if room is None:
            return None
        room.active_at = time.monotonic()
        ready = room.buffer.append(event)
        if room.typists:
            for published in ready:
                if published.type == "message":
                    room.typing_stopped(published.user)
        for published in ready:
            # A join or leave event is itself the change of the user list: members apply it to the
            # full list they got after their replay (an O(1) delta, not an O(N) list per change).
            room.broadcast(published.payload)
        if ready:
            room.wake()
        return room.buffer.last_id

    def deliver_ephemeral(self, name: str, payload: Payload) -> None:
        room = self._rooms.get(name)
        if room is None:
            return
        room.broadcast(payload)
        notice = loads(payload.json)  # a typing notice (the only kind): few, rate-limited per user
        if notice.get("type") == "typing" and isinstance(notice.get("user"), str):
            room.typing_seen(notice["user"])

    def position(self, name: str) -> tuple[str, int] | None:
        room = self._rooms.get(name)
        return (room.buffer.epoch, room.buffer.last_id) if room is not None else None

    def local_members(self, name: str) -> list[Session]:
        room = self._rooms.get(name)
        return room.presence.sessions() if room is not None else []

    def presence_changed(self, name: str, gone: list[Session]) -> None:
        room = self._rooms.get(name)
        if room is None:
            return
        for session in gone:
            self.attendance.drop(room, session)
        room.broadcast(self.users_payload(room))

    async def announce(self, name: str, kind: str, session: Session) -> None:
        room = self._rooms.get(name)
        if room is not None:
            await self.attendance.announce(room, kind, session)
            return
        try:
            await self.store.append(Draft(kind, name, session.name, None, session.sid))
        except ChatError as exc:
            log.warning("could not store %s of %s in %s: %s", kind, session.name, name, exc.detail)

    async def reload_room(self, name: str) -> None:
        room = self._rooms.get(name)
        if room is None:
            return
        state = await self.store.open_room(name, self.config.buffer_size, create=True)
        log.warning("history of %s reloaded (epoch %s -> %s)", name, room.buffer.epoch, state.epoch)
        room.buffer = self._buffer(state)
        room.outbox.clear()
        room.replies.clear()
        for listener in tuple(room.listeners):
            room.listeners.discard(listener)
            listener.end(Ending.HISTORY_RESET)
        room.wake()
