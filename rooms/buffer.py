"""The per-room buffer: the recent tail of a room's event sequence, in memory.

It is the cache every live read is served from ("the last 50", a cursor that is
still held, the replay of a reconnecting client) so the live path never touches
a store.  Ids in it are contiguous; events that arrive out of order (a store
that commits concurrently) are held back until the gap before them is filled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice

from .models import Event


class RoomBuffer:
    def __init__(self, epoch: str, last_id: int, recent: Iterable[Event], capacity: int) -> None:
        self.epoch = epoch
        self.capacity = capacity
        self._events: deque[Event] = deque(recent, maxlen=capacity)
        self.last_id = self._events[-1].id if self._events else last_id
        if self.last_id < last_id:
            self.last_id = last_id
        self._early: dict[int, Event] = {}  # id -> event that came before its predecessor

    def __len__(self) -> int:
        return len(self._events)

    @property
    def first_id(self) -> int:
        """Id of the oldest event held; ``last_id + 1`` when nothing is held."""
        return self._events[0].id if self._events else self.last_id + 1

    def append(self, event: Event) -> list[Event]:
        """Add ``event``; return the events that are now in order (possibly none)."""
        if event.id <= self.last_id:
            return []
        if event.id != self.last_id + 1:
            self._early[event.id] = event
            return []
        ready = [event]
        self._push(event)
        while self._early:
            nxt = self._early.pop(self.last_id + 1, None)
            if nxt is None:
                break
            self._push(nxt)
            ready.append(nxt)
        return ready

    def _push(self, event: Event) -> None:
        self._events.append(event)
        self.last_id = event.id

    def tail(self, count: int) -> list[Event]:
        if count <= 0:
            return []
        out = list(islice(reversed(self._events), count))
        out.reverse()
        return out

    def holds_after(self, after_id: int) -> bool:
        """True when every event with id > after_id is in the buffer."""
        return self.first_id - 1 <= after_id <= self.last_id

    def after(self, after_id: int, limit: int) -> list[Event]:
        """Events with id > after_id, oldest first, at most ``limit``; caller checks holds_after."""
        newer = self.last_id - after_id
        if newer <= 0:
            return []
        out = list(islice(reversed(self._events), newer))
        out.reverse()
        return out[:limit]

    def before(self, before_id: int, limit: int) -> list[Event]:
        """Held events with id < before_id, the newest ``limit`` of them, oldest first."""
        first = self.first_id
        if before_id <= first:
            return []
        count = min(before_id, self.last_id + 1) - first
        out = list(islice(self._events, max(0, count - limit), count))
        return out
