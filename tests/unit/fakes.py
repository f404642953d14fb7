"""What the unit tests plug into the hub in place of sockets: a listener that records what it is
handed, a memory store that records what it is asked to append, and waits on either with a bound."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from backends.memory import MemoryStore
from rooms import Hub
from rooms.members import Membership
from rooms.models import Batch, Draft, Event, Payload, Session, loads
from rooms.ports import Ending

GRACE_S = 0.05  # the presence grace of the unit tests' hub: a leave comes 50 ms after the last sign of life
WAIT_S = 2.0  # bound of every wait for something the hub does by itself (a leave after a tiny grace)

T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout_s: float = WAIT_S) -> T:
    """The result of ``awaitable`` if it completes within ``timeout_s``, else fail.

    Unlike ``asyncio.wait_for``, a timeout is a failure even when the awaitable answers its own
    cancellation with a value (a Poll answers None): it is not cancelled until the bound has passed.
    """
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        raise AssertionError(f"no answer within {timeout_s} s")
    return task.result()


class Watched:
    """Something a test can wait on: :meth:`until` a condition holds, :meth:`quiet` while it does not."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def until(self, condition: Callable[[], T], timeout_s: float = WAIT_S) -> T:
        """The first true value of ``condition()``, looked at after each change; fails after ``timeout_s``."""
        async def wait() -> T:
            while not (value := condition()):
                self._changed.clear()
                await self._changed.wait()
            return value
        try:
            return await asyncio.wait_for(wait(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"not within {timeout_s} s: {self!r}") from None

    async def quiet(self, condition: Callable[[], object], window_s: float) -> None:
        """Fail if ``condition()`` becomes true within ``window_s`` (something that must not happen)."""
        try:
            await self.until(condition, window_s)
        except AssertionError:
            return
        raise AssertionError(f"happened within {window_s} s: {self!r}")


class Recorder(Watched):
    """A :class:`rooms.ports.Listener`: keeps every call the hub makes, decoded, in order."""

    transport = "recorder"

    def __init__(self, label: str = "") -> None:
        super().__init__()
        self.label = label
        self.calls: list[tuple[Any, ...]] = []  # ("batch", frames, own or None) | ("own", frames) | ("end", why)
        self.initial: list[str] | None = None  # the whole list a transport sends after the replay

    def __repr__(self) -> str:
        return f"Recorder({self.label!r}, calls={self.calls!r})"

    def send_batch(self, batch: Batch, own: list[Payload] | None) -> None:
        self.calls.append(("batch", [loads(p.json) for p in batch.payloads],
                           None if own is None else [loads(p.json) for p in own]))
        self.changed()

    def send_own(self, payloads: list[Payload]) -> None:
        self.calls.append(("own", [loads(p.json) for p in payloads]))
        self.changed()

    def end(self, why: Ending) -> None:
        self.calls.append(("end", why))
        self.changed()

    # -- what the client would have seen ---------------------------------------------------------

    @property
    def frames(self) -> list[dict[str, Any]]:
        """Every payload received, in the order the client would read them (a batch, then its ``own``)."""
        out: list[dict[str, Any]] = []
        for call in self.calls:
            if call[0] == "batch":
                out.extend(call[1])
                out.extend(call[2] or [])
            elif call[0] == "own":
                out.extend(call[1])
        return out

    def events(self, kind: str | None = None, user: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.frames if "id" in f and f["type"] in ("message", "join", "leave")
                and (kind is None or f["type"] == kind) and (user is None or f["user"] == user)]

    def texts(self) -> list[str]:
        return [f["text"] for f in self.events("message")]

    def users(self) -> list[str] | None:
        """The user list as a client keeps it: the whole list it was given after its replay
        (``initial``, or a later presence frame), then each join and leave applied."""
        users = self.initial
        for f in self.frames:
            if f["type"] == "presence":
                users = list(f["users"])
            elif f["type"] in ("join", "leave") and users is not None:
                others = [u for u in users if u != f["user"]]
                users = sorted([*others, f["user"]], key=str.casefold) if f["type"] == "join" else others
        return users

    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        return [call[1] for call in self.calls if call[0] == "batch"]

    @property
    def ended(self) -> list[Ending]:
        return [call[1] for call in self.calls if call[0] == "end"]


class WatchedStore(MemoryStore, Watched):
    """The memory store, keeping every draft it was asked to append."""

    def __init__(self) -> None:
        MemoryStore.__init__(self)
        Watched.__init__(self)
        self.drafts: list[Draft] = []

    def __repr__(self) -> str:
        return f"WatchedStore(drafts={[(d.type, d.user, d.text) for d in self.drafts]!r})"

    async def append(self, draft: Draft) -> tuple[Event, bool]:
        self.drafts.append(draft)
        self.changed()
        return await super().append(draft)


# -- driving the hub as a transport would -----------------------------------------------------------

ROOM = "ruang"


async def connect(stack: contextlib.AsyncExitStack, hub: Hub, session: Session, room: str = ROOM,
                  label: str = "") -> tuple[Membership, Recorder]:
    """A live connection of ``session`` in ``room``, attached from the tail, open until ``stack`` closes."""
    listener = Recorder(label or session.name)
    member = await stack.enter_async_context(hub.join(room, session, listener))
    assert await member.attach(None, None) is not None
    listener.initial = loads(member.users_payload().json)["users"]  # as the WebSocket sends it
    return member, listener


async def notices(hub: Hub, room: str = ROOM) -> list[tuple[str, str]]:
    """The room's stored joins and leaves, oldest first: ``[("join", "Ani"), ...]``."""
    events = (await hub.read(room, 0)).events
    return [(e.type, e.user) for e in events if e.type != "message"]
