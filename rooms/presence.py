"""Who is in a room, as this process sees it: members keyed by casefolded name.

Presence belongs to the *session in the room*, not to a connection.  A member is
present while it has a live connection (a WebSocket, a stream, a long-poll in
progress: ``live``) or made a request in the room (a page view, a post, a poll:
``seen_at``) within the grace period.  The hub keeps one timer per member that
has nothing live; it fires at ``seen_at + grace`` and looks again, so a request
costs an assignment, not a timer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from .errors import NameTaken
from .models import Session
from .ports import Listener
from .validation import name_key


class Leavable(Protocol):
    def end_left(self) -> None:
        """The session left the room: answer that, not events, and do not come back."""


@dataclass(eq=False, slots=True)
class Member:
    session: Session
    live: int = 0  # open connections of the session in the room
    seen_at: float = 0.0  # monotonic seconds: the last request, or the end of the last connection
    timer: asyncio.TimerHandle | None = None  # the grace check, while nothing is live
    listeners: set[Listener] = field(default_factory=set)
    polls: set[Leavable] = field(default_factory=set)  # long-polls of the session in progress here

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def name_taken(session: Session) -> NameTaken:
    return NameTaken(f"the name {session.name!r} is already in use in this room")


class RoomPresence:
    def __init__(self) -> None:
        self.members: dict[str, Member] = {}

    def __len__(self) -> int:
        return len(self.members)

    def check(self, session: Session) -> None:
        """Raise :class:`NameTaken` if the session's name is present under another session."""
        member = self.members.get(name_key(session.name))
        if member is not None and member.session.sid != session.sid:
            raise name_taken(session)

    def add(self, session: Session, now_s: float) -> tuple[Member, bool]:
        """The session's member, and whether it is new (a join); raises NameTaken."""
        self.check(session)
        key = name_key(session.name)
        member = self.members.get(key)
        if member is not None:
            return member, False
        member = self.members[key] = Member(session, seen_at=now_s)
        return member, True

    def member_of(self, session: Session) -> Member | None:
        member = self.members.get(name_key(session.name))
        if member is not None and member.session.sid == session.sid:
            return member
        return None

    def remove(self, member: Member) -> bool:
        key = name_key(member.session.name)
        if self.members.get(key) is member:
            member.cancel_timer()
            del self.members[key]
            return True
        return False

    def sessions(self) -> list[Session]:
        return [m.session for m in self.members.values()]

    def users(self) -> list[str]:
        return sorted((m.session.name for m in self.members.values()), key=str.casefold)
