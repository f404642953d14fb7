"""Who is in a room: members keyed by casefolded name, each with its live connections.

A member is present while it has at least one connection (a WebSocket, or a
long-poll in progress).  When the last one goes, the hub starts a grace timer so
a page reload does not announce a leave and a join.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from .errors import NameTaken
from .events import Batch
from .validation import name_key


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated person: a random session id bound to one display name."""

    sid: str
    name: str


class Listener(Protocol):
    """A live recipient of a room's broadcasts (a WebSocket connection)."""

    def send_batch(self, batch: Batch) -> None:
        """Everything broadcast to the room in one loop iteration, in order."""

    def close_for(self, code: int, reason: str) -> None: ...


@dataclass(eq=False, slots=True)
class Connection:
    """One WebSocket or long-poll of a session in a room."""

    room: str
    session: Session
    listener: Listener | None = None
    closed: bool = False


@dataclass(eq=False, slots=True)
class Member:
    session: Session
    connections: set[Connection] = field(default_factory=set)
    leave_timer: asyncio.TimerHandle | None = None

    def cancel_timer(self) -> None:
        if self.leave_timer is not None:
            self.leave_timer.cancel()
            self.leave_timer = None


class RoomPresence:
    def __init__(self) -> None:
        self.members: dict[str, Member] = {}

    def __len__(self) -> int:
        return len(self.members)

    def check(self, session: Session) -> None:
        """Raise :class:`NameTaken` if the session's name is present under another session."""
        member = self.members.get(name_key(session.name))
        if member is not None and member.session.sid != session.sid:
            raise NameTaken(f"the name {session.name!r} is already in use in this room")

    def add(self, conn: Connection) -> tuple[Member, bool]:
        """Attach ``conn``; return its member and whether the member is new (a join)."""
        self.check(conn.session)
        key = name_key(conn.session.name)
        member = self.members.get(key)
        joined = member is None
        if member is None:
            member = self.members[key] = Member(conn.session)
        member.cancel_timer()
        member.connections.add(conn)
        return member, joined

    def member_of(self, session: Session) -> Member | None:
        member = self.members.get(name_key(session.name))
        if member is not None and member.session.sid == session.sid:
            return member
        return None

    def remove_member(self, member: Member) -> bool:
        key = name_key(member.session.name)
        if self.members.get(key) is member:
            member.cancel_timer()
            del self.members[key]
            return True
        return False

    def users(self) -> list[str]:
        return sorted((m.session.name for m in self.members.values()), key=str.casefold)
