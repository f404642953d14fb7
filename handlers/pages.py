"""Server-rendered pages: the join form, the room, and the no-JavaScript form posts."""

from __future__ import annotations

import re
import secrets
import zoneinfo
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import tornado.locale

from rooms import Event, Session, errors
from rooms.hub import TAIL_EVENTS
from rooms.validation import clean_name, clean_room, name_key

from .base import SESSION_COOKIE, SESSION_MAX_AGE_DAYS, BaseHandler, encode_session, room_path, shows_form_errors
from .messages import client_error_strings
from .richtext import message_html

GROUP_WINDOW_S = 300  # consecutive messages of one person this close together share one header
TZ_COOKIE = "tz"  # the reader's IANA time zone, written by the room page's script (static/js/app.js)
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")
# The join form's field an error belongs to (shown at it, the field focused); others go above the form.
JOIN_FIELD_OF_CODE = {"invalid_name": "name", "name_taken": "name", "invalid_room": "room", "no_such_room": "room"}


def accept_language_codes(header: str, supported: Iterable[str]) -> list[str]:
    """Locale codes from ``Accept-Language``, best first.

    Tornado matches ``id-ID`` to the shipped ``id_ID`` but not a bare ``id``, which
    browsers often send; a bare language is followed by the shipped locales of it.
    """
    weighted = []
    for part in header.split(","):
        code, _, params = part.strip().partition(";")
        score = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                score = float(params[2:])
            except ValueError:
                score = 0.0
        if code.strip() and score > 0:
            weighted.append((score, code.strip()))
    weighted.sort(key=lambda pair: pair[0], reverse=True)  # stable: header order breaks ties
    codes = []
    for _, code in weighted:
        codes.append(code)
        if "-" not in code and "_" not in code:
            codes.extend(sorted(s for s in supported if s.split("_")[0] == code.lower()))
    return codes


def continues(prev: Event | None, event: Event) -> bool:
    """Whether ``event`` is shown under ``prev``'s header (same person, within a few minutes).

    static/js/timeline.js has the same rule; tests/browser/cases/grouping.json holds both to it.
    """
    if prev is None or prev.type != "message" or event.type != "message" or prev.user != event.user:
        return False
    try:
        start, end = datetime.fromisoformat(prev.ts), datetime.fromisoformat(event.ts)
    except ValueError:  # not a timestamp: never grouped
        return False
    if start.tzinfo is None or end.tzinfo is None:
        return False
    gap_s = (end - start).total_seconds()
    return 0 <= gap_s <= GROUP_WINDOW_S


def zone_named(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The time zone called ``name`` (an IANA name from the browser), or None for anything else."""
    if not name or not _ZONE_NAME.fullmatch(name) or ".." in name or name.startswith("/"):
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def utc_clock(ts: str) -> str:
    """An event's time as the page shows it when it knows no zone: ``"16:28 UTC"``
    (static/js/render.js writes the same, and then the browser's own time over it)."""
    return ts[11:16] + " UTC"


def zone_clock(zone: zoneinfo.ZoneInfo | None) -> Callable[[str], str]:
    """The time label for events on a server-rendered page: in ``zone`` with its abbreviation
    (``"23:28 WIB"``), or :func:`utc_clock` without one."""
    if zone is None:
        return utc_clock

    def clock(ts: str) -> str:
        try:
            when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return utc_clock(ts)
        if when.tzinfo is None:
            return utc_clock(ts)
        return when.astimezone(zone).strftime("%H:%M %Z")
    return clock


def client_strings(locale: tornado.locale.Locale) -> dict[str, str]:
    """The UI text chat.js needs, translated; the room page hands it over as JSON."""
    _ = locale.translate
    return {
        "live": _("Live"),
        "connecting": _("Connecting…"),
        "reconnecting": _("Reconnecting…"),
        "reconnecting_in": _("Reconnecting in %(s)d s…"),
        "compat": _("Live (compatibility mode)"),  # Server-Sent Events
        "fallback": _("Live (basic mode)"),  # long-poll
        "offline": _("Offline"),
        "history": _("Viewing older messages"),
        "joined": _("%(name)s joined"),
        "left": _("%(name)s left"),
        "you": _("you"),
        "typing_one": _("%(name)s is typing…"),
        "typing_two": _("%(a)s and %(b)s are typing…"),
        "typing_many": _("Several people are typing…"),
        "new_one": _("%(n)d new message", "%(n)d new messages", 1),
        "new_other": _("%(n)d new message", "%(n)d new messages", 2),
        "older": _("Older messages"),
        "loading": _("Loading…"),
        "load_failed": _("Could not load older messages."),
        "sending": _("Sending…"),
        "waiting": _("Waiting for the connection…"),
        "sent": _("Sent"),
        "failed": _("Not sent: %(detail)s"),
        "retry": _("Retry"),
        "remove": _("Remove"),
        "truncated": _("Some earlier messages are no longer available; showing the latest."),
        "restarted": _("The room's history started over; showing the latest messages."),
        "left_room": _("You left this room (here or in another tab)."),
        "expired": _("Your session has expired."),
        "name_taken": _("Your name is in use in this room by another session."),
        "join_again": _("Join again"),
        **client_error_strings(locale),
    }


class PageHandler(BaseHandler):
    """Pages pick their language from ``Accept-Language`` (English and Indonesian ship)."""

    def get_user_locale(self) -> tornado.locale.Locale | None:
        header = self.request.headers.get("Accept-Language")
        if not header:
            return None
        codes = accept_language_codes(header, tornado.locale.get_supported_locales())
        return tornado.locale.get(*codes) if codes else None

    async def render_join(self, name: str, room: str, error: errors.ChatError | None = None, status: int = 200,
                          left: str | None = None) -> None:
        """The join form; an error is shown at its field (JOIN_FIELD_OF_CODE), which gets the focus,
        or above the form; ``left``: the room the session just left (said above the form)."""
        self.set_status(status)
        rooms = [r for r in await self.hub.rooms_info() if r["users"]]  # rooms with people in them now
        field = JOIN_FIELD_OF_CODE.get(error.code, "") if error is not None else ""
        self.render("join.html", name=name, room=room, field=field, left=left, rooms=rooms[:20], room_path=room_path,
                    error=self.translate_error(error) if error is not None else None)


class JoinPage(PageHandler):
    async def get(self) -> None:
        session = self.current_user
        room = self.raw_query("room") or ""
        # ?left=1: a form Leave (no JavaScript) came here; the page says which room was left.
        left = room if room and self.raw_query("left") == "1" else None
        await self.render_join(name=session.name if session else "", room=room, left=left)


class JoinHandler(PageHandler):
    """``POST /join``: bind a name to a session; a cookie for browsers, a token for the API.
    ``GET /join`` (a bookmark, or a reload after the form came back with an error) is sent to
    the join page, ``/``, with its query (``?room=``): the form has one address."""

    def get(self) -> None:
        query = self.request.query
        self.redirect("/" + ("?" + query if query else ""), status=303)

    def answers_with_form(self) -> bool:
        return not self.wants_json()

    async def show_form_error(self, exc: errors.ChatError) -> None:
        fields = getattr(self, "fields", {})
        await self.render_join(str(fields.get("name") or ""), str(fields.get("room") or ""), exc, exc.status)

    @shows_form_errors
    async def post(self) -> None:
        api = self.wants_json()
        self.fields: dict[str, Any] = {}
        self.fields = self.body_fields()
        name = clean_name(self.fields.get("name"))
        room = clean_room(self.fields.get("room"))
        current = self.current_user if not api else None
        # The same name as the browser's current session (casefolded): keep that session, spelling
        # included, so its presence and its messages go on under one name.
        same = current is not None and name_key(current.name) == name_key(name)
        session = current if same and current else Session(secrets.token_hex(16), name)
        await self.hub.check_name(room, session)
        await self.hub.create(room)  # the join creates the room
        if same and current:
            self.remember_left(room, current, False)  # joined again: this browser's tabs may follow it
        token = encode_session(self.config.cookie_secret, session)
        if api:
            self.send_json({"token": token, "name": session.name, "room": room,
                            "room_url": room_path(room)})
            return
        # Secure when the request came over https: directly, or per X-Forwarded-Proto from a
        # proxy the server was told to trust (--trust-proxy; otherwise the header is ignored).
        self.set_cookie(SESSION_COOKIE, token, expires_days=SESSION_MAX_AGE_DAYS,
                        httponly=True, samesite="Lax", secure=self.request.protocol == "https")
        self.redirect(room_path(room), status=303)


class RoomPage(PageHandler):
    """``GET /rooms/<room>``: the chat page, usable with JavaScript off.  A page view makes
    the session present in the room (announced once) for the grace period."""

    async def get(self, room: str) -> None:
        try:
            room = self.path_room(room)
        except errors.ChatError as exc:
            await self.render_join("", "", exc, 404)
            return
        session = self.current_user
        if session is None:
            self.redirect("/?room=" + quote(room, safe=""))
            return
        if self.has_left(room, session):  # with Leave (maybe in another tab): only a join brings it back
            await self.render_join(session.name, room, errors.Left(), errors.Left.status)
            return
        try:
            await self.hub.touch(room, session)
        except errors.NoSuchRoom as exc:  # a typo, or a room gone with the memory store: joining makes it
            await self.render_join(session.name, room, exc, 404)
            return
        except errors.NameTaken as exc:  # another session has the name here now: choose another
            await self.render_join(session.name, room, exc, exc.status)
            return
        await self.render_room(room)

    async def render_room(self, room: str, error: str | None = None, text: str = "", status: int = 200) -> None:
        session = self.current_user
        assert session is not None
        before = self.raw_query("before")
        if before is not None and before.isascii() and before.isdigit() and len(before) <= 18:  # else: newest
            events, epoch = await self.hub.read_before(room, int(before), TAIL_EVENTS)
            cursor = None  # an older page: no live resume from here
        else:
            sl = await self.hub.read(room, None)
            events, epoch, cursor = sl.events, sl.epoch, sl.cursor
        self.set_status(status)
        self.render("room.html", room=room, me=session.name, users=await self.hub.users(room), events=events,
                    epoch=epoch, cursor=cursor, error=error, text=text, room_path=room_path,
                    older=events[0].id if events and events[0].id > 1 else None,
                    continues=continues, client_strings=client_strings(self.locale),
                    clock=zone_clock(zone_named(self.get_cookie(TZ_COOKIE))), message_html=message_html,
                    max_length=self.hub.config.max_message_chars)
