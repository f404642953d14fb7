"""Who is in a room, as the hub changes it: connect, attach, disconnect, leave.

Mixed into :class:`~rooms.hub.Hub`.  A session's first live connection in a room
is a join; the end of its last one starts the grace timer, whose expiry is the
leave (a page reload is neither).  The :class:`~rooms.backend.PresenceBackend`
is asked whether a local change is also a room-wide one (other processes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from .buffer import Slice
from .errors import ChatError, Unavailable
from .events import Draft, Payload, presence_payload
from .presence import Connection, Listener, Member, Session
from .room import Room

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger("obrolan.hub")


class Membership:
    """Connections and members of the hub's rooms (a mixin of :class:`~rooms.hub.Hub`)."""

    async def _present_room(self: Hub, name: str) -> Room | None:
        """The room if anyone can be present in it: loaded here, or (presence shared between
        processes) loaded now, since its members may all be connected through other processes."""
        room = self._rooms.get(name)
        if room is None and self.presence.shared:
            room = await self.room(name)
        return room

    async def users(self: Hub, name: str) -> list[str]:
        room = await self._present_room(name)
        return self.presence.users(name, room.presence) if room else []

    async def check_name(self: Hub, name: str, session: Session) -> None:
        """Raise NameTaken if ``session``'s name is present in room ``name`` under another session.

        Checked as far as it can be: if the shared presence is unreachable the name passes
        here, and :meth:`connect` checks it again (a WebSocket is then refused with an error
        frame and 1013, so the client retries, rather than at the handshake).
        """
        try:
            room = await self._present_room(name)
        except Unavailable:
            return
        if room is not None:
            self.presence.check(name, room.presence, session)

    def presence_payload(self: Hub, room: Room) -> Payload:
        return presence_payload(self.presence.users(room.name, room.presence))

    async def _announce(self: Hub, room: Room, kind: str, session: Session) -> None:
        """Store and publish a join/leave event, then the new user list."""
        try:
            await self._append(room, Draft(kind, room.name, session.name, None, session.sid))
        except ChatError as exc:  # the store is failing: presence still changes
            log.warning("could not store %s of %s in %s: %s", kind, session.name, room.name, exc.detail)
        room.broadcast(self.presence_payload(room))

    async def connect(self: Hub, name: str, session: Session, listener: Listener | None = None) -> Connection:
        """Register a live connection; the first one of a session announces a join."""
        room = await self.room(name)
        self.presence.check(name, room.presence, session)
        conn = Connection(name, session, listener)
        member, joined = room.presence.add(conn)
        if joined:
            try:
                joined = await self.presence.joined(name, session)  # False: present through another process
            except ChatError:
                member.connections.discard(conn)
                if not member.connections:
                    room.presence.remove_member(member)
                raise
            if joined:
                await self._announce(room, "join", session)
        if listener is None:
            self._polls.add(conn)
        return conn

    async def attach(self: Hub, conn: Connection, after: int | None, epoch: str | None) -> Slice | None:
        """Replay what ``conn`` missed and start broadcasting to its listener, with no gap.

        Returns the replay (every event after ``after`` however many, or the tail),
        or ``None`` if the connection closed meanwhile.
        """
        room = await self.room(conn.room)
        first = await self.read(conn.room, after, epoch)
        events = list(first.events)
        cursor = first.cursor
        while not conn.closed and cursor < room.buffer.last_id:
            more = await self.read(conn.room, cursor, first.epoch)
            if more.truncated:  # fell out of history while we read: give the tail honestly
                first, events, cursor = more, list(more.events), more.cursor
                continue
            events.extend(more.events)
            cursor = more.cursor
        if conn.closed or conn.listener is None:
            return None
        # No await between the last read and this line: nothing can slip in between.
        room.flush()  # broadcasts still queued are in the replay: the new listener must not get them twice
        room.listeners.add(conn.listener)
        return Slice(events, cursor, first.epoch, first.truncated)

    def disconnect(self: Hub, conn: Connection) -> None:
        """A connection ended; the member leaves after the grace period if it was the last."""
        self._polls.discard(conn)  # before the closed check: leave() closes a poll's connection early
        if not self._polls and self._polls_answered is not None and not self._polls_answered.done():
            self._polls_answered.set_result(None)
        if conn.closed:
            return
        conn.closed = True
        room = self._rooms.get(conn.room)
        if room is None:
            return
        if conn.listener is not None:
            room.listeners.discard(conn.listener)
        room.active_at = time.monotonic()
        member = room.presence.member_of(conn.session)
        if member is None or conn not in member.connections:
            return
        member.connections.discard(conn)
        if not member.connections and not self.closing:
            loop = asyncio.get_running_loop()
            member.leave_timer = loop.call_later(
                self.config.presence_grace_s, self._expire, room, member)

    def _expire(self: Hub, room: Room, member: Member) -> None:
        member.leave_timer = None
        if not member.connections and room.presence.remove_member(member):
            room.typing_at.pop(member.session.sid, None)
            self._spawn(self._leave_after_grace(room, member.session))

    async def _leave_after_grace(self: Hub, room: Room, session: Session) -> None:
        if await self.presence.expired(room.name, session):  # False: still present through another process
            await self._announce(room, "leave", session)

    async def leave(self: Hub, name: str, session: Session) -> bool:
        """Leave now: announce it and close the session's sockets in the room with 1000."""
        room = await self._present_room(name)
        member = room.presence.member_of(session) if room else None
        if room is None or not await self.presence.left(name, session, member is not None):
            return False
        self._drop_member(room, session)
        await self._announce(room, "leave", session)
        return True

    def _drop_member(self: Hub, room: Room, session: Session) -> None:
        """Remove the session's member here and close its sockets in the room with 1000."""
        member = room.presence.member_of(session)
        if member is None:
            return
        room.presence.remove_member(member)
        room.typing_at.pop(session.sid, None)
        for conn in tuple(member.connections):
            conn.closed = True
            if conn.listener is not None:
                room.listeners.discard(conn.listener)
                conn.listener.close_for(1000, "left the room")
