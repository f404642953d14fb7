"""The hub: rooms, their buffers, presence, waiters and broadcasts.

It never sees a request.  Handlers authenticate, parse and serialise; the hub
validates what it is given, talks to the store, and pushes pre-encoded payloads
to listeners.  Each long-poll waiter has a future, resolved on publish.

Split by seam: :mod:`rooms.room` (a loaded room, its broadcast batching, ``Page``),
:mod:`rooms.membership` (connect, attach, disconnect, leave: mixed in here) and
:class:`rooms.backend.BackendHooks` (what a broker or presence backend calls).
This module keeps the life cycle, opening rooms, reading, waiting and writing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from . import validation
from .backend import BackendHooks, Broker, PresenceBackend
from .buffer import RoomBuffer, Slice
from .events import Draft, Event, Payload, dumps
from .membership import Membership
from .presence import Connection, Listener, Session
from .ratelimit import TokenBucketLimiter
from .room import PRESENCE_JSON_PREFIX, Page, Room, latest_presence_only
from .store import RoomState, Store

log = logging.getLogger("obrolan.hub")

TAIL_EVENTS = 50  # "the last 50": what a fresh client or a truncated answer gets
READ_LIMIT_MAX = 1000  # events in one answer; the client continues from the cursor
ROOM_SWEEP_INTERVAL_S = 30.0
SHUTDOWN_POLL_ANSWER_S = 2.0  # close() waits this long at most for woken long-polls to be answered
SHUTDOWN_TASKS_S = 2.0  # then this long at most for background announcements (leaves) to finish
TYPING_MIN_INTERVAL_S = 2.0  # "is typing" notices per session and room, at most one per interval


__all__ = ["PRESENCE_JSON_PREFIX", "READ_LIMIT_MAX", "TAIL_EVENTS", "Hub", "HubConfig", "Page", "Room",
           "latest_presence_only"]


@dataclass
class HubConfig:
    buffer_size: int = 1000  # events held in memory per room
    presence_grace_s: float = 10.0
    rate_limit_per_s: float = 5.0
    rate_burst: int = 10  # messages a session may send at once before the rate applies
    max_message_chars: int = validation.TEXT_MAX_CHARS_DEFAULT
    room_idle_s: float = 300.0


class Hub(Membership, BackendHooks):
    def __init__(self, store: Store, config: HubConfig | None = None, broker: Broker | None = None,
                 presence: PresenceBackend | None = None) -> None:
        self.store = store
        self.config = config or HubConfig()
        self.broker = broker  # None: one process, which publishes its own appends
        self.presence = presence or PresenceBackend()  # the default: this process's connections
        self.limiter = TokenBucketLimiter(self.config.rate_limit_per_s, self.config.rate_burst)
        self._rooms: dict[str, Room] = {}
        self._opening: dict[str, asyncio.Future[Room]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Long-polls in progress (connections without a listener): close() wakes them and waits
        # until their handlers have answered (and disconnected), so none is cut off unanswered.
        self._polls: set[Connection] = set()
        self._polls_answered: asyncio.Future[None] | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.closing = False

    # -- life cycle -------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        if self.broker is not None:
            await self.broker.start(self)
        self._schedule_sweep()

    async def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Answer every waiter, close every listener, flush the store."""
        self.closing = True
        if self._sweeper:
            self._sweeper.cancel()
        for room in self._rooms.values():
            self._wake(room)
            room.flush()  # what was broadcast goes out before the close frames
            for listener in tuple(room.listeners):
                listener.close_for(code, reason)
            for member in room.presence.members.values():
                member.cancel_timer()
        if self._polls:
            self._polls_answered = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._polls_answered), SHUTDOWN_POLL_ANSWER_S)
            except TimeoutError:
                log.warning("%d long-polls were not answered in time", len(self._polls))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=SHUTDOWN_TASKS_S)
        if self.broker is not None:
            await self.broker.close()
        await self.store.close()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(ROOM_SWEEP_INTERVAL_S, self.sweep)

    def sweep(self) -> None:
        """Drop idle empty rooms from memory and forget full rate-limit buckets."""
        now = time.monotonic()
        for name, room in list(self._rooms.items()):
            if room.idle() and now - room.active_at > self.config.room_idle_s:
                del self._rooms[name]
                self.store.forget_room(name)
                if self.broker is not None:
                    self.broker.release(name)
        self.limiter.sweep()
        if not self.closing:
            self._schedule_sweep()

    # -- rooms ----------------------------------------------------------------

    async def room(self, name: str) -> Room:
        room = self._rooms.get(name)
        if room is not None:
            return room
        pending = self._opening.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Room] = asyncio.get_running_loop().create_future()
        self._opening[name] = future
        try:
            if self.broker is not None:
                await self.broker.hold(name)  # subscribed before reading the state: nothing slips between
            room = Room(name, self._buffer(await self.store.open_room(name, self.config.buffer_size)))
            self._rooms[name] = room
            future.set_result(room)
            return room
        except BaseException as exc:
            if self.broker is not None:
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
            users = self.presence.count(name, room.presence) if room else 0
            out.append({"room": name, "users": users, "last_activity": last_ts})
        out.sort(key=lambda r: (int(r["users"]), str(r["last_activity"])), reverse=True)
        return out

    # -- reading ----------------------------------------------------------------

    async def read(self, name: str, after: int | None, epoch: str | None = None,
                   limit: int = READ_LIMIT_MAX) -> Slice:
        """Exactly the events after ``after``, or the tail with ``truncated=True``."""
        room = await self.room(name)
        buf = room.buffer
        if after is None:
            return Slice(buf.tail(TAIL_EVENTS), buf.last_id, buf.epoch, False)
        if self.broker is not None and ((epoch is not None and epoch != buf.epoch) or after > buf.last_id):
            await self.broker.catch_up(name)  # another process may have stored what the cursor names
            buf = room.buffer
        if (epoch is not None and epoch != buf.epoch) or after > buf.last_id:
            return self._truncated(room)
        if buf.holds_after(after):
            events = buf.after(after, limit)
            return Slice(events, events[-1].id if events else after, buf.epoch, False)
        events = await self.store.read_after(name, after, limit)
        if not events or events[0].id != after + 1:
            return self._truncated(room)
        # The store may hold commits not yet published here: hand out only what the buffer has
        # seen, or a reader attached now would get those events again live (or a cursor past it).
        published = room.buffer.last_id
        if events[-1].id > published:
            events = [e for e in events if e.id <= published]
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

    async def waiter(self, name: str, after: int, timeout_s: float) -> asyncio.Future[None] | None:
        """A future resolved when the room has events after ``after``, at ``timeout_s`` or at shutdown;
        None when there is no need to wait.  Cancel it to stop waiting.

        The caller awaits the future itself: a publish wakes each long-poll in one step
        (no task, shield or wait_for between the event and the answer).
        """
        room = await self.room(name)
        if self.closing or room.buffer.last_id > after or timeout_s <= 0:
            return None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        room.waiters[waiter] = loop.call_later(timeout_s, _resolve, waiter)
        waiter.add_done_callback(lambda done: self._unwait(room, done))
        return waiter

    @staticmethod
    def _unwait(room: Room, waiter: asyncio.Future[None]) -> None:
        timer = room.waiters.pop(waiter, None)
        if timer is not None:
            timer.cancel()
        room.active_at = time.monotonic()

    @staticmethod
    def _wake(room: Room) -> None:
        for waiter in room.waiters:
            _resolve(waiter)

    # -- writing ----------------------------------------------------------------

    async def post(self, name: str, session: Session, text: object,
                   client_id: object = None) -> tuple[Event, bool]:
        """Store and broadcast a message; ``(event, created)`` (False for a de-duplicated retry)."""
        text = validation.clean_text(text, self.config.max_message_chars)
        client_id = validation.clean_client_id(client_id)
        room = await self.room(name)
        self.presence.check(name, room.presence, session)
        self.limiter.take(session.sid)
        return await self._append(room, Draft("message", name, session.name, text, session.sid, client_id))

    async def _append(self, room: Room, draft: Draft) -> tuple[Event, bool]:
        """Store ``draft`` and publish it once committed, even if our caller is cancelled
        meanwhile: a committed event missing from the buffer would hold back every later one."""
        room.writing += 1
        task = asyncio.ensure_future(self.store.append(draft))
        task.add_done_callback(lambda done: self._appended(room, done))
        return await asyncio.shield(task)

    def _appended(self, room: Room, done: asyncio.Future[tuple[Event, bool]]) -> None:
        room.writing -= 1
        if done.cancelled() or done.exception() is not None:
            return
        event, created = done.result()
        if created:
            self._publish(room, event)

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
        payload = Payload(dumps({"type": "typing", "user": session.name}))
        room.broadcast(payload)
        if self.broker is not None:
            self.broker.relay(name, payload)
        return True

    def _publish(self, room: Room, event: Event) -> None:
        room.active_at = time.monotonic()
        for ready in room.buffer.append(event):
            room.broadcast(ready.payload)
        self._wake(room)

    def batch_pending(self, name: str, listener: Listener) -> bool:
        """True when ``listener`` is about to get a batch of room ``name``'s broadcasts.

        A listener's own frames written meanwhile must go after that batch to keep the order.
        """
        room = self._rooms.get(name)
        return room is not None and bool(room.outbox) and listener in room.listeners


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
