"""The history store seam, and the in-memory store.

The hub keeps each active room's recent events in a :class:`~rooms.buffer.RoomBuffer`;
a store owns the authoritative sequence: it allocates ids, keeps history beyond
the buffer (or not), and de-duplicates retried sends by ``(session, client_id)``.
Stores are picked by name/URL in :func:`rooms.make_store` and imported lazily.

What every store promises is pinned down by ``tests/test_store_contract.py``, run
against each implementation.  Where they legitimately differ it is said by
:attr:`Store.durable`: a durable store keeps every room's history (within its
retention) beyond the buffer and across restarts; the memory store keeps nothing
the hub's buffer does not hold and starts every room over after a restart.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field

from .events import Draft, Event

# How many (session, client_id) keys the memory store remembers per room.
MEMORY_DEDUPE_KEYS = 4096
# Rooms one list_rooms() answer holds at most (the join page shows fewer).
LIST_ROOMS_MAX = 100


def new_epoch() -> str:
    return secrets.token_hex(4)


@dataclass(slots=True)
class RoomState:
    epoch: str
    last_id: int
    recent: list[Event] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history a durable store keeps per room; 0 means no limit."""

    max_events: int = 0
    max_age_s: float = 0.0


@dataclass(slots=True)
class RoomInfo:
    room: str
    last_id: int
    last_ts: str | None


class Store(ABC):
    """What the hub needs from a history store. Every method may be called concurrently.

    Ids of a room are 1, 2, 3, ... with no gap and are never reused (not even after
    retention removed the events that had them); the epoch of a room changes only
    when its sequence starts over.
    """

    # True: history outlives the buffer and the process (epoch and ids too).
    durable: bool = False

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open files/connections, run migrations."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources."""

    @abstractmethod
    async def open_room(self, room: str, recent_max: int) -> RoomState:
        """The room's epoch, newest id and up to ``recent_max`` newest events (oldest first)."""

    @abstractmethod
    async def append(self, draft: Draft) -> tuple[Event, bool]:
        """Store ``draft`` with the next id; ``(event, True)``.

        If ``draft.client_id`` was already stored for the same session in that room,
        store nothing and return ``(first_event, False)``.  Raises
        :class:`rooms.errors.StoreError` when the event could not be made durable.
        """

    @abstractmethod
    async def read_after(self, room: str, after_id: int, limit: int) -> list[Event] | None:
        """Up to ``limit`` events with id > after_id, oldest first, the first being ``after_id + 1``.

        ``[]`` when there is nothing newer; ``None`` if they are no longer all held.
        """

    @abstractmethod
    async def read_before(self, room: str, before_id: int, limit: int) -> list[Event]:
        """The newest ``limit`` held events with id < before_id, oldest first, contiguous."""

    def forget_room(self, room: str) -> None:  # noqa: B027 - optional hook
        """The hub dropped the room from memory; drop any per-room cache."""

    async def list_rooms(self) -> list[RoomInfo]:
        """Rooms that have events, most recently active first (a bounded number)."""
        return []

    async def trim(self) -> int:
        """Apply the retention now (durable stores also do it by themselves); events removed."""
        return 0


class _MemRoom:
    __slots__ = ("epoch", "keys", "last_id", "last_ts")

    def __init__(self) -> None:
        self.epoch = new_epoch()
        self.last_id = 0
        self.last_ts: str | None = None
        self.keys: OrderedDict[tuple[str, str], Event] = OrderedDict()


class MemoryStore(Store):
    """History lives only in the hub's buffers; a room dropped from memory starts a new epoch."""

    def __init__(self) -> None:
        self._rooms: dict[str, _MemRoom] = {}

    def _room(self, room: str) -> _MemRoom:
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _MemRoom()
        return state

    async def open_room(self, room: str, recent_max: int) -> RoomState:
        state = self._room(room)
        return RoomState(state.epoch, state.last_id, [])

    async def append(self, draft: Draft) -> tuple[Event, bool]:
        state = self._room(draft.room)
        key = (draft.session, draft.client_id) if draft.client_id and draft.session else None
        if key is not None:
            seen = state.keys.get(key)
            if seen is not None:
                return seen, False
        state.last_id += 1
        event = draft.with_id(state.last_id)
        state.last_ts = event.ts
        if key is not None:
            state.keys[key] = event
            if len(state.keys) > MEMORY_DEDUPE_KEYS:
                state.keys.popitem(last=False)
        return event, True

    async def read_after(self, room: str, after_id: int, limit: int) -> list[Event] | None:
        state = self._rooms.get(room)
        if state is None or after_id >= state.last_id:
            return []
        return None  # nothing beyond the buffer

    async def read_before(self, room: str, before_id: int, limit: int) -> list[Event]:
        return []

    def forget_room(self, room: str) -> None:
        self._rooms.pop(room, None)

    async def list_rooms(self) -> list[RoomInfo]:
        infos = [RoomInfo(name, s.last_id, s.last_ts) for name, s in self._rooms.items() if s.last_ts]
        infos.sort(key=lambda info: info.last_ts or "", reverse=True)
        return infos[:LIST_ROOMS_MAX]
