"""The memory backend: history in the hub's buffers only, and this process alone.

* :class:`MemoryStore` allocates ids and de-duplicates retried sends, and keeps
  nothing the hub's buffer does not hold: a room dropped from memory, or a restart,
  starts it over (a new epoch).
* :class:`LocalBroker` publishes a committed event straight back to the hub: the
  same publish path as Redis, with no other process to reach.
* The default :class:`~rooms.ports.PresenceStore`: this process's picture is the whole one.

The SQLite backend uses the local broker and presence too (one process per file).
"""

from __future__ import annotations

from collections import OrderedDict

from rooms.models import Draft, Event, Payload, RoomInfo, RoomState, new_epoch
from rooms.ports import LIST_ROOMS_MAX, Broker, Core, Store

# How many (session, client_id) keys the memory store remembers per room.
MEMORY_DEDUPE_KEYS = 4096


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
        self._created: set[str] = set()  # rooms ever joined: they exist (empty) after a sweep too

    def _room(self, room: str) -> _MemRoom:
        state = self._rooms.get(room)
        if state is None:
            state = self._rooms[room] = _MemRoom()
        return state

    async def open_room(self, room: str, recent_max: int, create: bool = True) -> RoomState:
        if not create and room not in self._rooms and room not in self._created:
            return RoomState(new_epoch(), 0, [], exists=False)
        self._created.add(room)
        state = self._room(room)
        return RoomState(state.epoch, state.last_id, [])

    async def append(self, draft: Draft) -> tuple[Event, bool]:
        state = self._room(draft.room)
        self._created.add(draft.room)
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


class LocalBroker(Broker):
    """One process: what it commits is published to its own hub, and nowhere else."""

    def __init__(self) -> None:
        self.core: Core | None = None

    async def start(self, core: Core) -> None:
        self.core = core

    async def close(self) -> None:
        self.core = None

    async def hold(self, room: str) -> None:
        """Nothing to subscribe to."""

    def release(self, room: str) -> None:
        """Nothing to unsubscribe from."""

    def publish(self, room: str, event: Event) -> None:
        if self.core is not None:
            self.core.deliver(room, event)

    async def catch_up(self, room: str) -> None:
        """Nothing is ever published elsewhere."""

    def relay(self, room: str, payload: Payload) -> None:
        if self.core is not None:
            self.core.deliver_ephemeral(room, payload)
