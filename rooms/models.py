"""The core's value types: sessions, events, what a read answers, what a store holds.

An :class:`Event` is one entry in a room's ordered sequence (``message``, ``join``,
``leave``).  Its JSON is built when the event is created and the same bytes are
handed to every recipient; transports may cache a wire form of their own (a
WebSocket frame, a Server-Sent Event) in :attr:`Payload.wire` so that, too, is built once.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    # orjson returns its bytes inside a 4 KiB allocation however short the JSON is; the
    # buffer keeps a room's last 1,000 events, so keep a right-sized copy (b"%b" is the
    # cheapest copy: about 0.1 us).
    return b"%b" % orjson.dumps(obj)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def utc_timestamp(now_s: float | None = None) -> str:
    """``YYYY-MM-DDTHH:MM:SS.sssZ`` in UTC."""
    now_s = time.time() if now_s is None else now_s
    whole = int(now_s)
    ms = int((now_s - whole) * 1000)
    return f"{_utc_second(whole)}.{ms:03d}Z"


@lru_cache(maxsize=4)
def _utc_second(whole_s: int) -> str:
    """The seconds part of :func:`utc_timestamp`: the same for every event of that second, so made
    once (``strftime`` was 3 % of the server's time per message under a steady load)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole_s))


@dataclass(eq=False, slots=True)
class Payload:
    """Bytes to broadcast, plus per-transport wire forms built on first use."""

    json: bytes
    wire: dict[str, bytes] = field(default_factory=dict)
    event_id: int = 0  # the room event's id (an SSE ``id:`` line); 0 for what is not an event (presence, typing)


@dataclass(eq=False, slots=True)
class Batch:
    """The payloads a room broadcast in one loop iteration, handed to each listener together.

    A transport joins their wire forms once (cached in :attr:`wire`) and gives every
    member the same bytes in one write.
    """

    payloads: list[Payload]
    wire: dict[str, bytes] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Event:
    id: int
    type: str
    room: str
    user: str
    ts: str
    text: str | None = None
    # Identifies a send for exactly-once retries; never sent to other clients.
    session: str | None = None
    client_id: str | None = None
    payload: Payload = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.payload = Payload(dumps(self.public()), event_id=self.id)

    def public(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "room": self.room,
            "user": self.user,
            "ts": self.ts,
        }
        if self.text is not None:
            data["text"] = self.text
        return data

    @property
    def json(self) -> bytes:
        return self.payload.json


@dataclass(slots=True)
class Draft:
    """An event before the store has given it an id."""

    type: str
    room: str
    user: str
    text: str | None = None
    session: str | None = None
    client_id: str | None = None
    ts: str = field(default_factory=utc_timestamp)

    def with_id(self, event_id: int) -> Event:
        return Event(event_id, self.type, self.room, self.user, self.ts, self.text,
                     self.session, self.client_id)


def presence_payload(users: list[str]) -> Payload:
    return Payload(dumps({"type": "presence", "users": users}))


def new_epoch() -> str:
    """A fresh epoch: a room's sequence of ids started over."""
    return secrets.token_hex(4)


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated person: a random session id bound to one display name."""

    sid: str
    name: str


@dataclass(slots=True)
class Slice:
    """An answer to "what came after N": events, the new cursor, and whether it is exact."""

    events: list[Event]
    cursor: int
    epoch: str
    truncated: bool


@dataclass(slots=True)
class Page:
    """A page of history going back: ``events`` oldest first."""

    events: list[Event]
    epoch: str
    has_more: bool  # older events are held: ask again with before=events[0].id
    truncated: bool  # older events existed but are no longer held (retention, or memory only)


@dataclass(slots=True)
class RoomState:
    """What a store knows of a room when the hub loads it."""

    epoch: str
    last_id: int
    recent: list[Event] = field(default_factory=list)
    exists: bool = True  # False: nobody ever joined it (and open_room was not asked to create it)


@dataclass(slots=True)
class RoomInfo:
    room: str
    last_id: int
    last_ts: str | None


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history a durable store keeps per room; 0 means no limit."""

    max_events: int = 0
    max_age_s: float = 0.0
