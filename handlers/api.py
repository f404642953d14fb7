"""The JSON API: long-poll, history paging, posting, leaving, users, rooms, health.

Every handler: parse and authorise, call the hub, serialise.  Long-poll waits are
cancelled when the client goes away (``on_connection_close``).
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from rooms import errors
from rooms.buffer import Slice
from rooms.validation import parse_cursor

from .base import BaseHandler, room_path
from .pages import RoomPage

LONGPOLL_DEFAULT_WAIT_S = 25.0
LONGPOLL_MAX_WAIT_S = 60.0
LONGPOLL_MAX_EVENTS = 500  # per answer; the client continues from the cursor
HISTORY_PAGE_DEFAULT = 50  # events per page when no limit is given
HISTORY_PAGE_MAX = 200  # events per page at most


def slice_body(sl: Slice) -> bytes:
    """The long-poll answer, assembled from each event's pre-encoded JSON."""
    events = b",".join(e.json for e in sl.events)
    return b'{"events":[%s],"cursor":%d,"epoch":"%s","truncated":%s}' % (
        events, sl.cursor, sl.epoch.encode(), b"true" if sl.truncated else b"false")


def parse_wait(value: str | None) -> float:
    if value is None or value == "":
        return LONGPOLL_DEFAULT_WAIT_S
    try:
        wait = float(value)
    except ValueError:
        raise errors.BadRequest("wait must be a number of seconds") from None
    if not wait >= 0:  # also refuses NaN
        raise errors.BadRequest("wait must be a non-negative number of seconds")
    return min(wait, LONGPOLL_MAX_WAIT_S)


def parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return HISTORY_PAGE_DEFAULT
    # isascii: str.isdigit() also accepts digits int() refuses ("²"); the length keeps int() cheap.
    if not (value.isascii() and value.isdigit() and len(value) <= 6) or not 1 <= int(value) <= HISTORY_PAGE_MAX:
        raise errors.BadRequest(f"limit must be an integer from 1 to {HISTORY_PAGE_MAX}")
    return int(value)


class MessagesHandler(RoomPage):
    _wait: asyncio.Future[None] | None = None
    _gone = False  # the client closed the connection

    async def get(self, room: str) -> None:  # type: ignore[override]
        room = self.path_room(room)
        session = self.require_session()
        after = parse_cursor(self.raw_query("after"))
        before = parse_cursor(self.raw_query("before"))
        epoch = self.raw_query("epoch") or None
        if before is not None and after is not None:
            raise errors.BadRequest("give either after (follow) or before (page back), not both")
        if before is not None or (after is None and self.raw_query("limit") is not None):
            await self.page_back(room, before, parse_limit(self.raw_query("limit")))
            return
        wait_s = parse_wait(self.raw_query("wait"))
        conn = await self.hub.connect(room, session)  # a poll in progress makes the user present (name checked)
        try:
            sl = await self.hub.read(room, after, epoch, LONGPOLL_MAX_EVENTS)
            if after is not None and not sl.events and not sl.truncated and wait_s > 0:
                if self._client_gone():  # it went before the wait began: nothing to cancel, nobody to answer
                    return
                self._wait = await self.hub.waiter(room, after, wait_s)
                if self._wait is not None:
                    try:
                        await self._wait
                    except asyncio.CancelledError:
                        return  # the client went away
                sl = await self.hub.read(room, after, epoch, LONGPOLL_MAX_EVENTS)
            self.send_json(slice_body(sl))
        finally:
            self.hub.disconnect(conn)

    def on_connection_close(self) -> None:
        self._gone = True
        if self._wait is not None:
            self._wait.cancel()

    def _client_gone(self) -> bool:
        # A client that closed while its request was still being read never gets
        # on_connection_close (Tornado registers it only on an open stream): ask the stream.
        stream = getattr(self.request.connection, "stream", None)
        return self._gone or stream is None or stream.closed()

    async def page_back(self, room: str, before: int | None, limit: int) -> None:
        """One page of history older than ``before``; ``before`` in the answer asks for the next."""
        page = await self.hub.page(room, before, limit)
        oldest = page.events[0].id if page.events else None
        body = b'{"events":[%s],"epoch":"%s","before":%s,"has_more":%s,"truncated":%s}' % (
            b",".join(e.json for e in page.events), page.epoch.encode(),
            str(oldest).encode() if oldest is not None else b"null",
            b"true" if page.has_more else b"false", b"true" if page.truncated else b"false")
        self.send_json(body)

    async def post(self, room: str) -> None:
        room = self.path_room(room)
        session = self.require_session()
        form = self.is_form_post()
        fields: dict[str, object] = {}
        try:
            fields = self.body_fields()
            client_id = fields.get("client_id") or self.request.headers.get("Idempotency-Key")
            event, _created = await self.hub.post(room, session, fields.get("text"), client_id)
        except errors.ChatError as exc:
            if not form:
                raise
            if isinstance(exc, errors.RateLimited):
                self.set_header("Retry-After", str(exc.retry_after))
            await self.render_room(room, error=self.locale.translate(exc.detail),
                                   text=str(fields.get("text") or ""), status=exc.status)
            return
        if form:
            self.redirect(room_path(room), status=303)
        else:
            self.send_json(event.json, 201)  # a retry gets the first answer again


class LeaveHandler(BaseHandler):
    async def post(self, room: str) -> None:
        room = self.path_room(room)
        session = self.require_session()
        await self.hub.leave(room, session)
        if self.is_form_post():
            self.redirect("/?room=" + quote(room, safe=""), status=303)
        else:
            self.send_json({"left": True})


class UsersHandler(BaseHandler):
    async def get(self, room: str) -> None:
        room = self.path_room(room)
        self.require_session()
        self.send_json({"users": await self.hub.users(room)})


class RoomsHandler(BaseHandler):
    async def get(self) -> None:
        self.send_json({"rooms": await self.hub.rooms_info()})


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.send_json({"status": "draining" if self.hub.closing else "ok"}, 503 if self.hub.closing else 200)
