"""The seams of the core: what plugs into the hub, and the little a plug-in may call back.

========================  ==========================================================
:class:`Store`            the history: ids, durable appends, de-duplicated retries,
                          reads, and who is present by the joins and leaves it stored
:class:`Broker`           fan-out: every event committed anywhere, and every
                          ephemeral notice, to each process holding the room
:class:`PresenceStore`    room-wide presence when several processes serve one room
:class:`Core`             what a broker or presence store may call on the hub
:class:`Listener`         a live recipient (a WebSocket, a stream), as the hub sees it
:class:`Metrics`          what the hub counts for operators (default: nothing)
========================  ==========================================================

Backends (``backends/``) implement the first three and are handed a :class:`Core`;
they never import the hub nor see a room's fields.  One process uses the memory
backend's local broker and presence: the hub has one publish path whatever the backend.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

from .models import Batch, Draft, Event, Payload, RoomInfo, RoomState, Session

# Rooms one list_rooms() answer holds at most (the join page shows fewer).
LIST_ROOMS_MAX = 100


class Ending(enum.Enum):
    """Why the hub ends a listener; each transport says it in its own words (close codes)."""

    LEFT = "left the room"
    SHUTDOWN = "server shutting down"
    HISTORY_RESET = "the room's history changed; resume from your cursor"
    SLOW = "too slow; resume from your cursor"


class Listener(Protocol):
    """A live recipient of a room's broadcasts."""

    # What it is, for metrics: "websocket", "stream".
    transport: str

    def send_batch(self, batch: Batch, own: list[Payload] | None) -> None:
        """Everything broadcast to the room in one loop iteration, in order, then ``own``:
        this listener's replies (acks, errors) that were queued behind that batch."""

    def send_own(self, payloads: list[Payload]) -> None:
        """Replies to this listener alone, with no batch pending before them."""

    def end(self, why: Ending) -> None:
        """The hub is done with this listener: tell the client why and close."""


class Store(ABC):
    """What the hub needs from a history store.  Every method may be called concurrently.

    Ids of a room are 1, 2, 3, ... with no gap and are never reused (not even after
    retention removed the events that had them); the epoch of a room changes only
    when its sequence starts over.  ``tests/contract/test_store_contract.py`` pins this
    down for every implementation.
    """

    # True: history outlives the buffer and the process (epoch and ids too).
    durable: bool = False
    # True: present() answers who is present from the stored joins and leaves.
    keeps_presence: bool = False

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open files/connections, run migrations."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources."""

    async def ping(self) -> None:  # noqa: B027 - optional hook
        """Return once the store answers; raise a ChatError (e.g. Unavailable) if it does not.
        A store in this process's memory always answers."""

    @abstractmethod
    async def open_room(self, room: str, recent_max: int, create: bool = True) -> RoomState:
        """The room's epoch, newest id and up to ``recent_max`` newest events (oldest first).

        A room exists once it was created (``create=True``: a join) or has events; opening one
        that does not, without ``create``, answers ``exists=False`` and creates nothing.
        """

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
        """Rooms that have events, most recently active first (at most LIST_ROOMS_MAX)."""
        return []

    async def trim(self) -> int:
        """Apply the retention now (durable stores also do it by themselves); events removed."""
        return 0

    async def present(self) -> dict[str, list[Session]]:
        """Per room, the sessions whose stored join has no stored leave after it.

        The hub reads it at start, so a restart neither announces again the users who
        come back within the grace period nor forgets to announce those who do not.
        A store that keeps nothing across restarts answers ``{}``.
        """
        return {}


class Core(Protocol):
    """What a broker or presence store may call on the hub: nothing else of it."""

    def deliver(self, room: str, event: Event) -> int | None:
        """Publish a committed event here (ours or another process's): buffer, broadcast, wake.

        Returns the newest in-order id (less than ``event.id`` while a gap holds it back),
        or None if this process does not hold the room.
        """

    def deliver_ephemeral(self, room: str, payload: Payload) -> None:
        """A notice that is never stored (typing), to this process's members of the room."""

    def position(self, room: str) -> tuple[str, int] | None:
        """``(epoch, newest in-order id)`` of a room this process holds, else None."""

    def local_members(self, room: str) -> list[Session]:
        """The sessions present in ``room`` through this process."""

    def presence_changed(self, room: str, gone: list[Session]) -> None:
        """The room-wide user list changed; ``gone`` left through another process."""

    async def announce(self, room: str, kind: str, session: Session) -> None:
        """Store and publish a join or leave that this process's presence store claimed."""

    async def reload_room(self, room: str) -> None:
        """The shared history started over (new epoch) or moved past us: reload the room."""


class Broker(ABC):
    """Fan-out between the processes that hold a room (one process: the local broker)."""

    @abstractmethod
    async def start(self, core: Core) -> None:
        """Connect; from now on deliver to ``core``."""

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
    def publish(self, room: str, event: Event) -> None:
        """``event`` was committed by this process: deliver it to every holder, this one included."""

    @abstractmethod
    async def catch_up(self, room: str) -> None:
        """Deliver every event of ``room`` newer than what this process holds."""

    @abstractmethod
    def relay(self, room: str, payload: Payload) -> None:
        """An ephemeral notice (never stored) to every holder of ``room``, this one included."""


class PresenceStore:
    """Room-wide presence.  This default: the hub's own picture is the whole picture."""

    shared = False  # True: members may be present through other processes too

    async def start(self, core: Core) -> None:
        """Begin; ``core`` is told of changes made elsewhere."""

    async def close(self) -> None:
        """Stop (members stay present: a restart is not a leave)."""

    def users(self, room: str) -> list[str] | None:
        """The room's users when others than this process's may be present; None: ask the hub."""
        return None

    def check(self, room: str, session: Session) -> None:
        """Raise NameTaken if the name is present elsewhere under another session."""

    async def joined(self, room: str, session: Session) -> bool:
        """``session`` became present here; is it a join of the room (to announce)?"""
        return True

    async def expired(self, room: str, session: Session) -> bool:
        """``session``'s grace here ran out; did it leave the room (to announce)?"""
        return True

    async def left(self, room: str, session: Session, was_member: bool) -> bool:
        """Explicit leave; True if the session was present (and now is not)."""
        return was_member


class Metrics:
    """What the core counts for the people who run the server (``ops.metrics`` exports it).

    This default counts nothing (and the hub does not even read the clock for it).  Every call
    is made once per event or per batch, never per recipient: a room of a thousand members costs
    one call per flush.  Gauges (connections, rooms, waiting long-polls, members per room) are not
    counted here: the exporter reads ``Hub.census()`` when it is scraped, which costs the hot path
    nothing.
    """

    def event_stored(self, kind: str) -> None:
        """This process stored (and publishes) an event of type ``kind``: counted once, here."""

    def delivered(self, transport: str, events: int) -> None:
        """``events`` events were handed to clients over ``transport`` (a sum over one batch)."""

    def error(self, code: str) -> None:
        """An error with ``code`` (docs/protocol.md) was answered to a client."""

    def store_appended(self, seconds: float) -> None:
        """An append took ``seconds`` from the call to the store's commit (what an ack waits for)."""

    def batch_sent(self, seconds: float) -> None:
        """``seconds`` from a batch's first event reaching this room (delivered by the broker) to
        the end of its write to the room's first listener."""

    def slow_reader_closed(self, transport: str) -> None:
        """A reader over ``transport`` fell more than --max-backlog behind and was ended."""


NO_METRICS = Metrics()


@dataclass(frozen=True, slots=True)
class Backend:
    """What ``backends.open_backend`` picks for a deployment, handed to the hub whole."""

    store: Store
    broker: Broker
    presence: PresenceStore
