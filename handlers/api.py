"""The JSON API: long-poll, history paging, posting, typing, leaving, users, rooms, health.

Every handler: parse and authorise, call the hub, serialise.  A long-poll is one
``hub.poll``, cancelled when the client goes away (``on_connection_close``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from rooms import errors, validation
from rooms.members import Poll
from rooms.models import Slice, dumps
from rooms.validation import parse_cursor

from . import compat
from .base import BaseHandler, room_path, shows_form_errors
from .pages import RoomPage

LONGPOLL_DEFAULT_WAIT_S = 25.0
LONGPOLL_MAX_WAIT_S = 60.0
LONGPOLL_MAX_EVENTS = 500  # per answer; the client continues from the cursor
HISTORY_PAGE_DEFAULT = 50  # events per page when no limit is given
HISTORY_PAGE_MAX = 200  # events per page at most


def slice_body(sl: Slice, typing: list[str]) -> bytes:
    """The long-poll answer, assembled from each event's pre-encoded JSON, and who is typing."""
    events = b",".join(e.json for e in sl.events)
    return b'{"events":[%s],"cursor":%d,"epoch":"%s","truncated":%s,"typing":%s}' % (
        events, sl.cursor, sl.epoch.encode(), b"true" if sl.truncated else b"false", dumps(typing))


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
    _poll: Poll | None = None
    _unsent: bytes | memoryview | None = None  # set once the answer went out from the room's wake

    async def get(self, room: str) -> None:  # replaces RoomPage.get, which renders the page
        room = self.path_room(room)
        session = self.require_session()
        after = parse_cursor(self.raw_query("after"))
        before = parse_cursor(self.raw_query("before"))
        if before is not None and after is not None:
            raise errors.BadRequest("give either after (follow) or before (page back), not both")
        # Every argument given is checked, whichever of the two kinds of request it is for.
        limit, wait = parse_limit(self.raw_query("limit")), parse_wait(self.raw_query("wait"))
        if before is not None or (after is None and self.raw_query("limit")):
            await self.page_back(room, before, limit)
            return
        self.refuse_if_left(room, session)  # reading the archive (above) is not being in the room
        self._poll = self.hub.poll(room, session, after, self.raw_query("epoch") or None, wait, LONGPOLL_MAX_EVENTS,
                                   answer=self.answer_at_wake)
        if compat.request_stream_closed(self.request):
            self._poll.cancel()  # it went before the wait began: still present, nobody to answer
        sl = await self._poll
        if sl is not None:
            if sl.events:
                self.hub.metrics.delivered("longpoll", len(sl.events))
            if self._unsent is not None:
                compat.finish_sent(self, self._unsent)
            else:
                self.send_json_answer(slice_body(sl, await self.hub.typists(room, session)))

    def answer_at_wake(self, sl: Slice, typing: list[str], shared: dict[Any, Any]) -> bool:
        """Send the answer from the room's wake (rooms/waiters.py), with the head and body made
        once for every poll of that wake that gets the same answer; :meth:`get` ends the request."""
        key = ("json", id(sl), *typing)  # id: ``shared`` holds the Slice until the wake is over
        whole = shared.get(key)
        if whole is None:
            body = slice_body(sl, typing)
            head = self.config.json_answer.head(len(body))
            whole = shared[key] = (head, body, b"%s\r\n%s" % (head, body))
        self._unsent = compat.send_whole(self, *whole)
        return self._unsent is not None

    def on_connection_close(self) -> None:
        super().on_connection_close()  # a body still streaming in: no method runs
        if self._poll is not None:
            self._poll.cancel()

    async def page_back(self, room: str, before: int | None, limit: int) -> None:
        """One page of history older than ``before``; ``before`` in the answer asks for the next."""
        page = await self.hub.page(room, before, limit)  # reading the archive is not being in the room
        oldest = page.events[0].id if page.events else None
        body = b'{"events":[%s],"epoch":"%s","before":%s,"has_more":%s,"truncated":%s}' % (
            b",".join(e.json for e in page.events), page.epoch.encode(),
            str(oldest).encode() if oldest is not None else b"null",
            b"true" if page.has_more else b"false", b"true" if page.truncated else b"false")
        self.send_json(body)

    @shows_form_errors
    async def post(self, room: str) -> None:
        room = self.path_room(room)
        session = self.require_session()
        self.refuse_if_left(room, session)
        fields = self.body_fields()
        self.form_text = str(fields.get("text") or "")
        # One rule for every transport: a client_id given is validated whatever its value (0, "",
        # false and [] are refused, not ignored; null is none); without one, the Idempotency-Key
        # header, which is held to the same rule whenever it is sent.
        header_key = self.request.headers.get("Idempotency-Key")
        if header_key is not None:
            try:
                validation.clean_client_id(header_key)
            except errors.InvalidClientId as exc:
                raise errors.InvalidClientId(exc.detail.replace("client_id", "the Idempotency-Key header", 1)) from None
        client_id = fields["client_id"] if fields.get("client_id") is not None else header_key  # null: none
        event, _created = await self.hub.post(room, session, fields.get("text"), client_id)
        if self.is_form_post():
            self.redirect(room_path(room), status=303)
        else:
            self.send_json(event.json, 201)  # a retry gets the first answer again

    async def show_form_error(self, exc: errors.ChatError) -> None:
        """The room again, with what was typed and why it was not sent; the join form if the
        session left the room (in another tab): sending needs a new join."""
        if isinstance(exc, errors.Left):
            session = self.require_session()
            await self.render_join(session.name, self.path_room(self.path_args[0]), exc, exc.status)
            return
        await self.render_room(self.path_room(self.path_args[0]), error=self.translate_error(exc),
                               text=getattr(self, "form_text", ""), status=exc.status)


class TypingHandler(BaseHandler):
    """"I am typing", for clients without a WebSocket (an event stream or long-poll reader).

    A request in the room like a post: the session is present (joined first if it was not).
    ``{"sent": false}`` when the notice was dropped (one per 2 s per user goes out).
    """

    async def post(self, room: str) -> None:
        room = self.path_room(room)
        session = self.require_session()
        self.refuse_if_left(room, session)
        await self.hub.touch(room, session)
        self.send_json({"sent": self.hub.typing(room, session)})


class LeaveHandler(BaseHandler):
    async def post(self, room: str) -> None:
        room = self.path_room(room)
        session = self.require_session()
        await self.hub.leave(room, session)
        self.remember_left(room, session, True)
        if self.is_form_post():
            self.redirect("/?room=" + quote(room, safe="") + "&left=1", status=303)  # the join page says so
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


class ReadyHandler(BaseHandler):
    """Readiness, for balancers and orchestrators; /healthz stays liveness (the process runs)."""

    async def get(self) -> None:
        await self.hub.check_ready()  # NotReady: 503 through write_error
        self.send_json({"ready": True})
