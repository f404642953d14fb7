"""Server-rendered pages: the join form, the room, and the no-JavaScript form posts."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from rooms import Session, errors
from rooms.hub import TAIL_EVENTS
from rooms.validation import clean_name, clean_room, name_key

from .base import SESSION_COOKIE, SESSION_MAX_AGE_DAYS, BaseHandler, encode_session, room_path


class JoinPage(BaseHandler):
    async def get(self) -> None:
        session = self.current_user
        await self.render_join(name=session.name if session else "", room=self.raw_query("room") or "")

    async def render_join(self, name: str, room: str, error: str | None = None, status: int = 200) -> None:
        self.set_status(status)
        rooms = await self.hub.rooms_info()
        self.render("join.html", name=name, room=room, error=error, rooms=rooms[:20], room_path=room_path)


class JoinHandler(JoinPage):
    """``POST /join``: bind a name to a session; a cookie for browsers, a token for the API."""

    async def post(self) -> None:
        api = self.wants_json()
        fields: dict[str, Any] = {}
        try:
            fields = self.body_fields()
            name = clean_name(fields.get("name"))
            room = clean_room(fields.get("room"))
            current = self.current_user if not api else None
            # Same name as the browser's current session: keep the session (and its presence).
            sid = current.sid if current and name_key(current.name) == name_key(name) else secrets.token_hex(16)
            session = Session(sid, name)
            self.hub.check_name(room, session)
        except errors.ChatError as exc:
            if api:
                raise
            await self.render_join(str(fields.get("name") or ""), str(fields.get("room") or ""),
                                   self.locale.translate(exc.detail), exc.status)
            return
        token = encode_session(self.config.cookie_secret, session)
        if api:
            self.send_json({"token": token, "name": session.name, "room": room,
                            "room_url": room_path(room)})
            return
        self.set_cookie(SESSION_COOKIE, token, expires_days=SESSION_MAX_AGE_DAYS,
                        httponly=True, samesite="Lax")
        self.redirect(room_path(room), status=303)


class RoomPage(BaseHandler):
    """``GET /rooms/<room>``: the chat page, usable with JavaScript off."""

    async def get(self, room: str) -> None:
        try:
            room = clean_room(room)
        except errors.ChatError as exc:
            self.set_status(404)
            await JoinPage.render_join(self, "", "", exc.detail, 404)  # type: ignore[arg-type]
            return
        if self.current_user is None:
            self.redirect("/?room=" + quote(room, safe=""))
            return
        await self.render_room(room)

    async def render_room(self, room: str, error: str | None = None, text: str = "", status: int = 200) -> None:
        session = self.current_user
        assert session is not None
        before = self.raw_query("before")
        if before is not None and before.isdigit():
            events, epoch = await self.hub.read_before(room, int(before), TAIL_EVENTS)
            cursor = None  # an older page: no live resume from here
        else:
            sl = await self.hub.read(room, None)
            events, epoch, cursor = sl.events, sl.epoch, sl.cursor
        self.set_status(status)
        self.render("room.html", room=room, me=session.name, users=self.hub.users(room), events=events,
                    epoch=epoch, cursor=cursor, error=error, text=text, room_path=room_path,
                    older=events[0].id if events and events[0].id > 1 else None)
