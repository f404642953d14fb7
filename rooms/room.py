"""One loaded room: its buffer, presence, listeners and long-poll waiters, and the
per-iteration broadcast batching that reaches each listener in one write.

What a room broadcasts in one loop iteration is queued in :attr:`Room.outbox` and
handed to every listener as one :class:`~rooms.models.Batch` by :meth:`Room.flush`.
A reply to one listener (an ack, an error) queued while a batch is pending goes out
behind that batch, so a client never sees the ack of an event before the event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from .buffer import RoomBuffer
from .models import Batch, Payload, Slice
from .ports import NO_METRICS, Listener, Metrics
from .presence import RoomPresence
from .waiters import Ready, Waiters

PRESENCE_JSON_PREFIX = b'{"type":"presence"'


class Listeners:
    """The listeners of a room, and how many there are per transport: kept up to date on add and
    discard, so that a batch is counted per transport without walking the listeners, and the
    census reads the counts instead of the sockets."""

    __slots__ = ("_all", "by_transport")

    def __init__(self) -> None:
        self._all: set[Listener] = set()
        self.by_transport: dict[str, int] = {}

    def add(self, listener: Listener) -> None:
        if listener not in self._all:
            self._all.add(listener)
            self.by_transport[listener.transport] = self.by_transport.get(listener.transport, 0) + 1

    def discard(self, listener: Listener) -> None:
        if listener in self._all:
            self._all.remove(listener)
            left = self.by_transport[listener.transport] - 1
            if left:
                self.by_transport[listener.transport] = left
            else:
                del self.by_transport[listener.transport]

    def __contains__(self, listener: object) -> bool:
        return listener in self._all

    def __iter__(self) -> Iterator[Listener]:
        return iter(self._all)

    def __len__(self) -> int:
        return len(self._all)


@dataclass(eq=False)
class Room:
    name: str
    buffer: RoomBuffer
    presence: RoomPresence = field(default_factory=RoomPresence)
    listeners: Listeners = field(default_factory=Listeners)
    # Long-poll waiters: each its own future (awaited directly by its poll); their timeouts.
    waiters: Waiters = field(default_factory=Waiters)
    typing_at: dict[str, float] = field(default_factory=dict)  # sid -> monotonic time of last notice sent
    # name -> monotonic time of the last typing notice seen (from any process): long-poll answers
    # say who is typing, since they carry no ephemeral notices of their own.
    typists: dict[str, float] = field(default_factory=dict)
    active_at: float = field(default_factory=time.monotonic)  # monotonic seconds; the sweep drops idle rooms
    writing: int = 0  # appends in flight: the room stays loaded until they are published
    outbox: list[Payload] = field(default_factory=list)  # broadcast this loop iteration, not yet sent
    replies: dict[Listener, list[Payload]] = field(default_factory=dict)  # queued behind the outbox
    # Sessions whose leave (after the grace) is being stored: a return waits for it, then joins anew.
    leaving: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    metrics: Metrics = NO_METRICS
    outbox_at: float = 0.0  # monotonic seconds: when the pending batch's first payload was queued

    @property
    def waiting(self) -> int:
        """Long-polls waiting in this room now."""
        return len(self.waiters)

    def idle(self) -> bool:
        return not (self.listeners or self.presence.members or self.waiters or self.writing or self.leaving)

    # -- broadcasting -------------------------------------------------------------

    def broadcast(self, payload: Payload) -> None:
        """Queue ``payload`` for every listener; sent at the next loop iteration."""
        if not self.listeners:
            return
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self.flush)
            if self.metrics is not NO_METRICS:
                self.outbox_at = time.monotonic()
        self.outbox.append(payload)

    def reply(self, listener: Listener, payload: Payload) -> None:
        """Send ``payload`` to ``listener`` alone, after any batch it is about to get."""
        if self.outbox and listener in self.listeners:
            self.replies.setdefault(listener, []).append(payload)
        else:
            listener.send_own([payload])

    def flush(self) -> None:
        """Hand the payloads queued by :meth:`broadcast` to every listener, as one batch."""
        if not self.outbox:
            return
        batch = Batch(latest_presence_only(self.outbox))
        replies, self.outbox, self.replies = self.replies, [], {}
        # A listener may close (and leave the set) while we send: iterate a copy.
        listeners = tuple(self.listeners)
        if listeners:
            counted = self.metrics is not NO_METRICS
            if counted:
                # One count per transport for the whole batch (from the counts kept on join and
                # leave: nothing per listener), before the writes, so that a client that got the
                # batch can already see it counted.
                events = len(batch.payloads)
                for transport, count in self.listeners.by_transport.items():
                    self.metrics.delivered(transport, events * count)
            first = listeners[0]
            first.send_batch(batch, replies.pop(first, None))
            if counted:  # the first write is timed: batch queued -> bytes handed to its socket
                self.metrics.batch_sent(time.monotonic() - self.outbox_at)
            for listener in listeners[1:]:
                listener.send_batch(batch, replies.pop(listener, None))
        for listener, own in replies.items():  # left the room meanwhile: its replies still go
            listener.send_own(own)

    # -- long-poll waiters ----------------------------------------------------------

    def read_held(self, after: int, epoch: str | None, limit: int) -> Slice | None:
        """``Hub.read``'s answer when the buffer alone gives it (no await: a wake answers polls
        with it); None when only the store, another process or a truncated answer can."""
        buf = self.buffer
        if (epoch is not None and epoch != buf.epoch) or after > buf.last_id or not buf.holds_after(after):
            return None
        events = buf.after(after, limit)
        return Slice(events, events[-1].id if events else after, buf.epoch, False)

    def wait(self, timeout_s: float, ready: Ready | None = None, user: str | None = None) -> asyncio.Future[None]:
        """A future resolved at the next publish (``ready`` called first: see rooms/waiters.py),
        at ``timeout_s`` or at shutdown; cancel it to stop.  Its poll calls :meth:`unwait` once
        its wait is over, whatever ended it.  ``user``: whose poll it is (see :meth:`typing_seen`)."""
        return self.waiters.add(timeout_s, ready, user)

    def unwait(self, waiter: asyncio.Future[None]) -> None:
        """``waiter``'s wait is over: forget it (a woken one is gone already)."""
        self.waiters.discard(waiter)
        self.active_at = time.monotonic()

    def wake(self, but: str | None = None) -> None:
        """Resolve every waiter (but ``but``'s polls): a poll that can answers from here, then its
        ``set_result`` (one task step scheduled, for what follows the answer); no done-callbacks, no
        timer cancel per waiter (docs/performance.md, "Long-poll answers")."""
        if self.waiters:
            self.waiters.wake(but)
            self.active_at = time.monotonic()

    # -- who is typing (for long-poll answers) ------------------------------------------

    def typing_seen(self, user: str) -> None:
        """``user`` is typing now: waiting long-polls answer, naming them; ``user``'s own polls wait
        on (an answer never names its reader: theirs would bring no news)."""
        self.typists[user] = time.monotonic()
        self.wake(but=user)

    def typing_stopped(self, user: str) -> None:
        """``user``'s message arrived: their typing is over (as a live client shows it)."""
        self.typists.pop(user, None)

    def typing_now(self, fresh_s: float, but: str | None = None) -> list[str]:
        """Who sent a typing notice in the last ``fresh_s`` seconds, ``but`` the reader."""
        if not self.typists:
            return []
        since = time.monotonic() - fresh_s
        for user in [u for u, at in self.typists.items() if at < since]:
            del self.typists[user]
        return [u for u in self.typists if u != but]


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
