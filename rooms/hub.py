"""The hub: rooms, their buffers, presence, waiters and broadcasts.

It never sees a request.  Handlers authenticate, parse and serialise; the hub
validates what it is given, talks to the store, and pushes pre-encoded payloads
to listeners.  Each long-poll waiter has a future, resolved on publish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from . import validation
from .backend import BackendHooks, Broker, PresenceBackend
from .buffer import RoomBuffer, Slice
from .errors import ChatError
from .events import Batch, Draft, Event, Payload, dumps, presence_payload
from .presence import Connection, Listener, Member, RoomPresence, Session
from .ratelimit import TokenBucketLimiter
from .store import Store

log = logging.getLogger("obrolan.hub")

TAIL_EVENTS = 50  # "the last 50": what a fresh client or a truncated answer gets
READ_LIMIT_MAX = 1000  # events in one answer; the client continues from the cursor
ROOM_SWEEP_INTERVAL_S = 30.0
SHUTDOWN_POLL_ANSWER_S = 2.0  # close() waits this long at most for woken long-polls to be answered
TYPING_MIN_INTERVAL_S = 2.0  # "is typing" notices per session and room, at most one per interval


@dataclass
class HubConfig:
    buffer_size: int = 1000
    presence_grace_s: float = 10.0
    rate_limit_per_s: float = 5.0
    rate_burst: int = 10
    max_message_chars: int = validation.TEXT_MAX_CHARS_DEFAULT
    room_idle_s: float = 300.0


@dataclass(eq=False)
class Room:
    name: str
    buffer: RoomBuffer
    presence: RoomPresence = field(default_factory=RoomPresence)
    listeners: set[Listener] = field(default_factory=set)
    # Long-poll waiters: each its own future (awaited directly by its handler), and its timeout.
    waiters: dict[asyncio.Future[None], asyncio.TimerHandle] = field(default_factory=dict)
    typing_at: dict[str, float] = field(default_factory=dict)  # sid -> monotonic time of last notice
    active_at: float = field(default_factory=time.monotonic)
    writing: int = 0  # appends in flight: the room stays loaded until they are published
    outbox: list[Payload] = field(default_factory=list)  # broadcast this loop iteration, not yet sent

    @property
    def waiting(self) -> int:
        """Long-polls waiting in this room now."""
        return len(self.waiters)

    def idle(self) -> bool:
        return not (self.listeners or self.presence.members or self.waiters or self.writing)

    def flush(self) -> None:
        """Hand the payloads queued by :meth:`Hub._broadcast` to every listener, as one batch."""
        if not self.outbox:
            return
        batch = Batch(latest_presence_only(self.outbox))
        self.outbox = []
        # A listener may close (and leave the set) while we send: iterate a copy.
        for listener in tuple(self.listeners):
            listener.send_batch(batch)


PRESENCE_JSON_PREFIX = b'{"type":"presence"'


def latest_presence_only(payloads: list[Payload]) -> list[Payload]:
    """A user list is a snapshot: of those broadcast in one batch only the last one is sent.

    A burst of joins (many appends committed together) would otherwise send every member
    one full user list per join: quadratic bytes for a big room.
    """
    lists = [i for i, p in enumerate(payloads) if p.json.startswith(PRESENCE_JSON_PREFIX)]
    if len(lists) < 2:
        return payloads
    drop = set(lists[:-1])
    return [p for i, p in enumerate(payloads) if i not in drop]


@dataclass(slots=True)
class Page:
    """A page of history going back: ``events`` oldest first."""

    events: list[Event]
    epoch: str
    has_more: bool  # older events are held: ask again with before=events[0].id
    truncated: bool  # older events existed but are no longer held (retention, or memory only)


class Hub(BackendHooks):
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
            await asyncio.wait(self._tasks, timeout=2.0)
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
            state = await self.store.open_room(name, self.config.buffer_size)
            room = Room(name, RoomBuffer(state.epoch, state.last_id, state.recent, self.config.buffer_size))
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

    def loaded(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def users(self, name: str) -> list[str]:
        room = self._rooms.get(name)
        return self.presence.users(name, room.presence) if room else []

    def check_name(self, name: str, session: Session) -> None:
        """Raise NameTaken if ``session``'s name is present in room ``name`` under another session."""
        room = self._rooms.get(name)
        if room is not None:
            self.presence.check(name, room.presence, session)

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

    async def wait(self, name: str, after: int, timeout_s: float) -> None:
        """Return when the room has events after ``after``, at ``timeout_s``, or at shutdown."""
        waiter = await self.waiter(name, after, timeout_s)
        if waiter is not None:
            await waiter

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
        self._broadcast(room, payload)
        if self.broker is not None:
            self.broker.relay(name, payload)
        return True

    def _publish(self, room: Room, event: Event) -> None:
        room.active_at = time.monotonic()
        for ready in room.buffer.append(event):
            self._broadcast(room, ready.payload)
        self._wake(room)

    @staticmethod
    def _broadcast(room: Room, payload: Payload) -> None:
        # Queued and sent at the next loop iteration: what a room broadcasts in one
        # iteration reaches each member in one write (Room.flush), not one per payload.
        if not room.listeners:
            return
        if not room.outbox:
            asyncio.get_running_loop().call_soon(room.flush)
        room.outbox.append(payload)

    def batch_pending(self, name: str, listener: Listener) -> bool:
        """True when ``listener`` is about to get a batch of room ``name``'s broadcasts.

        A listener's own frames written meanwhile must go after that batch to keep the order.
        """
        room = self._rooms.get(name)
        return room is not None and bool(room.outbox) and listener in room.listeners

    def presence_payload(self, room: Room) -> Payload:
        return presence_payload(self.presence.users(room.name, room.presence))

    async def _announce(self, room: Room, kind: str, session: Session) -> None:
        """Store and publish a join/leave event, then the new user list."""
        try:
            await self._append(room, Draft(kind, room.name, session.name, None, session.sid))
        except ChatError as exc:  # the store is failing: presence still changes
            log.warning("could not store %s of %s in %s: %s", kind, session.name, room.name, exc.detail)
        self._broadcast(room, self.presence_payload(room))

    # -- presence -----------------------------------------------------------------

    async def connect(self, name: str, session: Session, listener: Listener | None = None) -> Connection:
        """Register a live connection; the first one of a session announces a join."""
        room = await self.room(name)
        self.presence.check(name, room.presence, session)
        conn = Connection(name, session, listener)
        member, joined = room.presence.add(conn)
        if joined:
            try:
                joined = await self.presence.joined(name, session)  # False: present through another process
            except ChatError:
                member.connections.discard(conn)
                if not member.connections:
                    room.presence.remove_member(member)
                raise
            if joined:
                await self._announce(room, "join", session)
        if listener is None:
            self._polls.add(conn)
        return conn

    async def attach(self, conn: Connection, after: int | None, epoch: str | None) -> Slice | None:
        """Replay what ``conn`` missed and start broadcasting to its listener, with no gap.

        Returns the replay (every event after ``after`` however many, or the tail),
        or ``None`` if the connection closed meanwhile.
        """
        room = await self.room(conn.room)
        first = await self.read(conn.room, after, epoch)
        events = list(first.events)
        cursor = first.cursor
        while not conn.closed and cursor < room.buffer.last_id:
            more = await self.read(conn.room, cursor, first.epoch)
            if more.truncated:  # fell out of history while we read: give the tail honestly
                first, events, cursor = more, list(more.events), more.cursor
                continue
            events.extend(more.events)
            cursor = more.cursor
        if conn.closed or conn.listener is None:
            return None
        # No await between the last read and this line: nothing can slip in between.
        room.flush()  # broadcasts still queued are in the replay: the new listener must not get them twice
        room.listeners.add(conn.listener)
        return Slice(events, cursor, first.epoch, first.truncated)

    def disconnect(self, conn: Connection) -> None:
        """A connection ended; the member leaves after the grace period if it was the last."""
        self._polls.discard(conn)  # before the closed check: leave() closes a poll's connection early
        if not self._polls and self._polls_answered is not None and not self._polls_answered.done():
            self._polls_answered.set_result(None)
        if conn.closed:
            return
        conn.closed = True
        room = self._rooms.get(conn.room)
        if room is None:
            return
        if conn.listener is not None:
            room.listeners.discard(conn.listener)
        room.active_at = time.monotonic()
        member = room.presence.member_of(conn.session)
        if member is None or conn not in member.connections:
            return
        member.connections.discard(conn)
        if not member.connections and not self.closing:
            loop = asyncio.get_running_loop()
            member.leave_timer = loop.call_later(
                self.config.presence_grace_s, self._expire, room, member)

    def _expire(self, room: Room, member: Member) -> None:
        member.leave_timer = None
        if not member.connections and room.presence.remove_member(member):
            room.typing_at.pop(member.session.sid, None)
            self._spawn(self._leave_after_grace(room, member.session))

    async def _leave_after_grace(self, room: Room, session: Session) -> None:
        if await self.presence.expired(room.name, session):  # False: still present through another process
            await self._announce(room, "leave", session)

    async def leave(self, name: str, session: Session) -> bool:
        """Leave now: announce it and close the session's sockets in the room with 1000."""
        room = self._rooms.get(name)
        if room is None and self.presence.shared:
            room = await self.room(name)  # the session may be present through another process
        member = room.presence.member_of(session) if room else None
        if room is None or not await self.presence.left(name, session, member is not None):
            return False
        self._drop_member(room, session)
        await self._announce(room, "leave", session)
        return True

    def _drop_member(self, room: Room, session: Session) -> None:
        """Remove the session's member here and close its sockets in the room with 1000."""
        member = room.presence.member_of(session)
        if member is None:
            return
        room.presence.remove_member(member)
        room.typing_at.pop(session.sid, None)
        for conn in tuple(member.connections):
            conn.closed = True
            if conn.listener is not None:
                room.listeners.discard(conn.listener)
                conn.listener.close_for(1000, "left the room")


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
