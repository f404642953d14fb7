"""One loaded room's state, its per-iteration broadcast batching, and a page of history.

A :class:`Room` is what the hub keeps in memory for a room while anyone uses it:
the buffer, the local presence, the listeners and long-poll waiters, and the
outbox of payloads broadcast in the current loop iteration (sent as one
:class:`~rooms.events.Batch` by :meth:`Room.flush`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .buffer import RoomBuffer
from .events import Batch, Event, Payload
from .presence import Listener, RoomPresence

PRESENCE_JSON_PREFIX = b'{"type":"presence"'


@dataclass(eq=False)
class Room:
    name: str
    buffer: RoomBuffer
    presence: RoomPresence = field(default_factory=RoomPresence)
    listeners: set[Listener] = field(default_factory=set)
    # Long-poll waiters: each its own future (awaited directly by its handler), and its timeout.
    waiters: dict[asyncio.Future[None], asyncio.TimerHandle] = field(default_factory=dict)
    typing_at: dict[str, float] = field(default_factory=dict)  # sid -> monotonic time of last notice
    active_at: float = field(default_factory=time.monotonic)  # monotonic seconds; the sweep drops idle rooms
    writing: int = 0  # appends in flight: the room stays loaded until they are published
    outbox: list[Payload] = field(default_factory=list)  # broadcast this loop iteration, not yet sent

    @property
    def waiting(self) -> int:
        """Long-polls waiting in this room now."""
        return len(self.waiters)

    def idle(self) -> bool:
        return not (self.listeners or self.presence.members or self.waiters or self.writing)

    def broadcast(self, payload: Payload) -> None:
        """Queue ``payload`` for every listener; sent at the next loop iteration.

        What a room broadcasts in one iteration reaches each member in one write
        (:meth:`flush`), not one per payload.
        """
        if not self.listeners:
            return
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outbox.append(payload)

    def flush(self) -> None:
        """Hand the payloads queued by :meth:`broadcast` to every listener, as one batch."""
        if not self.outbox:
            return
        batch = Batch(latest_presence_only(self.outbox))
        self.outbox = []
        # A listener may close (and leave the set) while we send: iterate a copy.
        for listener in tuple(self.listeners):
            listener.send_batch(batch)


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
