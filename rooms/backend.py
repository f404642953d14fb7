"""The seams a multi-process deployment plugs into the hub: a broker and a presence backend.

One process needs neither: the hub publishes its own appends to its own listeners and
the base :class:`PresenceBackend` (the default) decides joins and leaves from this
process's connections alone.  With many processes sharing one history (``--redis-url``):

* a :class:`Broker` subscribes to the rooms this process holds (``hold``/``release``),
  hands every event appended anywhere to ``hub.deliver_remote`` (the same publish path,
  encode once), and fills gaps from the shared history (``catch_up``);
* a :class:`PresenceBackend` keeps who is in a room across processes and says when a
  local connection makes a room-wide join or leave.

The hub still tracks its own connections in :class:`~rooms.presence.RoomPresence`;
the backend is asked only when that local picture changes.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from .errors import ChatError
from .events import Draft, Event, Payload
from .presence import RoomPresence, Session

if TYPE_CHECKING:
    from .hub import Hub
    from .room import Room

log = logging.getLogger("obrolan.hub")

CLOSE_HISTORY_RESET = 1012  # "service restart": resume from your cursor (the answer says truncated)


class Broker(ABC):
    """Fan-out between processes: which rooms this process holds, and their events."""

    @abstractmethod
    async def start(self, hub: Hub) -> None:
        """Connect; from now on deliver to ``hub``."""

    @abstractmethod
    async def close(self) -> None:
        """Stop delivering and disconnect."""

    @abstractmethod
    async def hold(self, room: str) -> None:
        """Subscribe to ``room`` before the hub reads its state; raise Unavailable if it cannot."""

    @abstractmethod
    def release(self, room: str) -> None:
        """The hub dropped ``room`` from memory: stop receiving it."""

    @abstractmethod
    async def catch_up(self, room: str) -> None:
        """Deliver every event of ``room`` newer than the hub's buffer (another process appended it)."""

    @abstractmethod
    def relay(self, room: str, payload: Payload) -> None:
        """Send an ephemeral notice (never stored) to the room's members on other processes."""


class PresenceBackend:
    """Room-wide presence; this default is the local picture, unchanged.

    ``local`` is the hub's :class:`RoomPresence` for the room (this process's members).
    """

    shared = False  # True: members may be present through other processes too

    def users(self, room: str, local: RoomPresence) -> list[str]:
        return local.users()

    def count(self, room: str, local: RoomPresence) -> int:
        return len(local)

    def check(self, room: str, local: RoomPresence, session: Session) -> None:
        """Raise NameTaken if the session's name is present under another session."""
        local.check(session)

    async def joined(self, room: str, session: Session) -> bool:
        """``session`` has its first connection here; is it a join of the room?"""
        return True

    async def expired(self, room: str, session: Session) -> bool:
        """``session``'s grace here ran out; did it leave the room?"""
        return True

    async def left(self, room: str, session: Session, was_member: bool) -> bool:
        """Explicit leave; True if the session was present (and now is not)."""
        return was_member


class BackendHooks:
    """What a broker or presence backend calls on the hub (mixed into :class:`~rooms.hub.Hub`)."""

    _rooms: dict[str, Room]

    def deliver_remote(self: Hub, name: str, event: Event) -> int | None:
        """An event another process appended (or one we missed): publish it here like our own.

        Returns the buffer's newest in-order id (less than ``event.id`` while a gap holds
        it back), or None if this process does not hold the room.
        """
        room = self._rooms.get(name)
        if room is None:
            return None
        self._publish(room, event)
        if event.type != "message":
            # After the join/leave event, as for our own: the user list that goes with it.
            room.broadcast(self.presence_payload(room))
        return room.buffer.last_id

    def deliver_ephemeral(self: Hub, name: str, payload: Payload) -> None:
        """A notice from another process that is never stored (typing)."""
        room = self._rooms.get(name)
        if room is not None:
            room.broadcast(payload)

    def presence_changed(self: Hub, name: str, gone: list[Session]) -> None:
        """The room-wide user list changed; ``gone`` left through another process (their
        sockets here close with 1000, as if they had pressed Leave here)."""
        room = self._rooms.get(name)
        if room is None:
            return
        for session in gone:
            self._drop_member(room, session)
        room.broadcast(self.presence_payload(room))

    async def announce(self: Hub, name: str, kind: str, session: Session) -> None:
        """Store and publish a join or leave that this process's presence backend claimed."""
        room = self._rooms.get(name)
        if room is not None:
            await self._announce(room, kind, session)
            return
        try:
            await self.store.append(Draft(kind, name, session.name, None, session.sid))
        except ChatError as exc:
            log.warning("could not store %s of %s in %s: %s", kind, session.name, name, exc.detail)

    async def reload_room(self: Hub, name: str) -> None:
        """The shared history started over (new epoch) or moved past us: reload the room.

        Listeners are closed so they resume by cursor; waiters are woken to read again.
        """
        room = self._rooms.get(name)
        if room is None:
            return
        state = await self.store.open_room(name, self.config.buffer_size)
        log.warning("history of %s reloaded (epoch %s -> %s)", name, room.buffer.epoch, state.epoch)
        room.buffer = self._buffer(state)
        room.outbox.clear()
        for listener in tuple(room.listeners):
            listener.close_for(CLOSE_HISTORY_RESET, "the room's history changed; resume from your cursor")
        self._wake(room)
