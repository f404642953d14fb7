"""What every HTTP handler shares: the hub, sessions, raw arguments and error answers.

Errors are mapped in one place, :meth:`BaseHandler.write_error`: core
:class:`~rooms.errors.ChatError`s and Tornado's own ``HTTPError``s both become
``{"error": code, "detail": text}`` with the right status for the API, or a small
page in the reader's language for a browser.  A form post that a person can correct
(:func:`shows_form_errors`) shows its form again with the message instead.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote, urlsplit

import tornado.web
from tornado import httputil
from tornado.log import access_log
from tornado.web import create_signed_value, decode_signed_value

from rooms import Hub, Session, errors
from rooms.models import dumps, loads
from rooms.validation import TEXT_MAX_CHARS_DEFAULT, clean_room

from . import compat
from .answers import CONTENT_SECURITY_POLICY as CONTENT_SECURITY_POLICY  # where tests and pages read it
from .answers import DEFAULT_HEADERS, JSON_CONTENT_TYPE, JsonAnswer
from .compat import OriginCheck
from .messages import RETRY_CODES, RETRY_PAGE_AFTER_S, page_message
from .pinger import Heartbeat, Pinger

H = TypeVar("H", bound="BaseHandler")
P = ParamSpec("P")

SESSION_COOKIE = "obrolan_session"
# A body over the limit whose Content-Length is at most this is read through and dropped after the
# 413 is sent (see BaseHandler), for at most this long; a larger one is not read at all.
BODY_DRAIN_MAX_BYTES = 8 << 20
BODY_DRAIN_TIMEOUT_S = 10.0
SESSION_MAX_AGE_DAYS = 30
# Rooms a browser's session left with Leave: its other tabs must not join them again behind the
# person's back (a reconnect, a poll, a form post), only a new join does.  Kept in a signed cookie,
# so every process sees it with no shared state; the newest few only, to keep the cookie small.
LEFT_COOKIE = "obrolan_left"
LEFT_ROOMS_REMEMBERED = 20


# A request body's limit: at least this, and room for a message of the longest length however it is
# written: a character is at most 12 bytes in a body (4 UTF-8 bytes, each %XX in a form; a surrogate
# pair escaped in JSON, \ud83d\ude00), plus the other fields (client_id, names, punctuation).
HTTP_BODY_MIN_MAX_BYTES = 16 * 1024
BODY_BYTES_PER_CHAR_MAX = 12
BODY_OTHER_FIELDS_BYTES = 4 * 1024


def http_body_limit(max_message_chars: int) -> int:
    """The largest request body taken: a message of ``max_message_chars`` characters always fits."""
    return max(HTTP_BODY_MIN_MAX_BYTES, max_message_chars * BODY_BYTES_PER_CHAR_MAX + BODY_OTHER_FIELDS_BYTES)


@dataclass
class AppConfig:
    """Settings the handlers read (the hub has its own), the one WebSocket pinger and the one
    stream heartbeat."""

    cookie_secret: str
    allowed_origins: frozenset[str] = field(default_factory=frozenset)
    max_backlog_bytes: int = 1 << 20
    http_body_max_bytes: int = http_body_limit(TEXT_MAX_CHARS_DEFAULT)  # settings: --max-message-length
    pinger: Pinger = field(default_factory=lambda: Pinger(0))  # 0: no pings
    heartbeat: Heartbeat = field(default_factory=lambda: Heartbeat(0))  # 0: no keep-alive lines
    json_answer: JsonAnswer = field(default_factory=JsonAnswer)  # a 200 JSON answer's head, made once


def encode_session(secret: str, session: Session) -> str:
    """The bearer token, which is also the signed cookie's value."""
    value = json.dumps([session.sid, session.name], ensure_ascii=False)
    return create_signed_value(secret, SESSION_COOKIE, value).decode()


def decode_session(secret: str, token: str | bytes | None) -> Session | None:
    raw = decode_signed_value(secret, SESSION_COOKIE, token, max_age_days=SESSION_MAX_AGE_DAYS)
    if raw is None:
        return None
    try:
        sid, name = json.loads(raw)
        return Session(str(sid), str(name))
    except (ValueError, TypeError):
        return None


def origin_allowed(origin: str, host: str, allowed: frozenset[str]) -> bool:
    """Whether a browser page from ``origin`` may open a live connection (WebSocket, event
    stream): the server's own ``host`` (as the browser named it), or one of --allowed-origins."""
    if origin.rstrip("/") in allowed:
        return True
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # e.g. "http://[": not an origin we serve
        return False
    return netloc.lower() == host.lower()


def room_path(room: str, suffix: str = "") -> str:
    return "/rooms/" + quote(room, safe="") + suffix


if TYPE_CHECKING:
    # To the type checker the mixin is the RequestHandler it is mixed into (BaseHandler, RoomSocket);
    # at run time it stays a plain class, so no handler's MRO changes.
    _Handler = tornado.web.RequestHandler
else:
    _Handler = object


class SessionMixin(_Handler):
    """Authentication shared by HTTP and WebSocket handlers: cookie or ``Authorization: Bearer``."""

    hub: Hub
    config: AppConfig
    auth_via: str | None = None

    def initialize(self, hub: Hub, config: AppConfig) -> None:
        self.hub = hub
        self.config = config

    def get_current_user(self) -> Session | None:
        header = self.request.headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            session = decode_session(self.config.cookie_secret, token.strip()) if scheme.lower() == "bearer" else None
            if session is None:
                raise errors.Unauthorized("invalid or expired bearer token")
            self.auth_via = "bearer"
            return session
        cookie = self.get_cookie(SESSION_COOKIE)
        session = decode_session(self.config.cookie_secret, cookie) if cookie else None
        if session is not None:
            self.auth_via = "cookie"
        return session

    def require_session(self) -> Session:
        session: Session | None = self.current_user
        if session is None:
            raise errors.Unauthorized("join first: POST /join, then send the cookie or a bearer token")
        return session

    # -- rooms this browser left (cookie sessions only: a bearer client is one client) -----------

    def rooms_left(self, session: Session) -> list[str]:
        if self.auth_via != "cookie":
            return []
        raw = decode_signed_value(self.config.cookie_secret, LEFT_COOKIE, self.get_cookie(LEFT_COOKIE),
                                  max_age_days=SESSION_MAX_AGE_DAYS)
        try:
            sid, rooms = json.loads(raw) if raw is not None else (None, [])
        except (ValueError, TypeError):
            return []
        return [str(r) for r in rooms] if sid == session.sid and isinstance(rooms, list) else []

    def has_left(self, room: str, session: Session) -> bool:
        return room in self.rooms_left(session)

    def refuse_if_left(self, room: str, session: Session) -> None:
        if self.has_left(room, session):
            raise errors.Left()

    def remember_left(self, room: str, session: Session, left: bool) -> None:
        """Add ``room`` to the rooms this browser's session left, or take it out (a new join)."""
        before = self.rooms_left(session)
        rooms = [r for r in before if r != room]
        if left:
            rooms = [*rooms, room][-LEFT_ROOMS_REMEMBERED:]
        elif len(rooms) == len(before):
            return  # it was not there: no cookie to change
        value = json.dumps([session.sid, rooms], ensure_ascii=False)
        self.set_cookie(LEFT_COOKIE, create_signed_value(self.config.cookie_secret, LEFT_COOKIE, value).decode(),
                        expires_days=SESSION_MAX_AGE_DAYS, httponly=True, samesite="Lax",
                        secure=self.request.protocol == "https")

    def raw_query(self, name: str) -> str | None:
        """A query argument exactly as sent (Tornado's getters replace control characters)."""
        values = self.request.query_arguments.get(name)
        return _decode(values[-1]) if values else None

    def path_room(self, room: str) -> str:
        """The room named in the path.  Browsers percent-encode it; a client that sends raw UTF-8
        bytes gets them read as Latin-1 by the HTTP parser: read them again as UTF-8, so
        ``/rooms/café`` and ``/rooms/caf%C3%A9`` are one room."""
        if not self.request.path.isascii():
            try:
                room = room.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                raise errors.InvalidRoom("the room in the path must be UTF-8 (percent-encoded)") from None
        return clean_room(room)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The one mapping of an error to an answer: JSON for the API, a page for a browser."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        error = exc if isinstance(exc, errors.ChatError) else _http_error(status_code, exc)
        self.hub.metrics.error(error.code)
        self.set_error_status(error)
        self.finish(self.error_body(error))

    def error_body(self, error: errors.ChatError) -> bytes:
        """The body of an error answer (setting its Content-Type)."""
        if self.wants_html():
            return self.error_page(error)
        self.set_header("Content-Type", JSON_CONTENT_TYPE)
        return dumps(error.as_dict())

    def set_error_status(self, error: errors.ChatError) -> None:
        self.set_status(error.status)
        if isinstance(error, errors.RateLimited):
            self.set_header("Retry-After", str(error.retry_after))
        if error.status == 405:
            self.set_header("Allow", ", ".join(allowed_methods(type(self))))
        if isinstance(error, errors.PayloadTooLarge):
            self.set_header("Connection", "close")  # the rest of the body is not read

    def error_page(self, error: errors.ChatError) -> bytes:
        retry_s = RETRY_PAGE_AFTER_S if error.code in RETRY_CODES else None
        return self.render_string("error.html", message=self.translate_error(error), back=self.error_back_link(),
                                  retry_s=retry_s)

    def render_error_page(self, error: errors.ChatError) -> None:
        self.finish(self.error_page(error))

    def translate_error(self, error: errors.ChatError) -> str:
        return page_message(self.locale, error)

    def error_back_link(self) -> str:
        return "/"

    def wants_html(self) -> bool:
        """A browser navigating or posting a form (not the API, which asks for JSON or anything)."""
        accept = self.request.headers.get("Accept", "")
        return "text/html" in accept and "application/json" not in accept

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        if isinstance(value, errors.ChatError):
            return  # an expected answer, not a server fault
        super().log_exception(typ, value, tb)


def allowed_methods(cls: type[tornado.web.RequestHandler]) -> list[str]:
    """The methods a handler class answers (the ones it defines itself)."""
    return [m for m in cls.SUPPORTED_METHODS
            if getattr(cls, m.lower(), None) is not getattr(tornado.web.RequestHandler, m.lower(), None)]


def _http_error(status_code: int, exc: BaseException | None) -> errors.ChatError:
    """Tornado's own refusals (routing, methods, body size, XSRF/origin) in the core's vocabulary."""
    error = errors.for_status(status_code)
    detail = getattr(exc, "log_message", None) or httputil.responses.get(status_code, "error")
    error.detail = str(detail)
    return error


def shows_form_errors(
        method: Callable[Concatenate[H, P], Awaitable[None]]) -> Callable[Concatenate[H, P], Awaitable[None]]:
    """A form post whose errors a person can correct: for a browser, the handler's
    ``show_form_error(exc)`` shows the form again with the message at it; the API still
    gets the JSON error from :meth:`BaseHandler.write_error`."""

    @functools.wraps(method)
    async def wrapper(self: H, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await method(self, *args, **kwargs)
        except errors.ChatError as exc:
            if not self.answers_with_form():
                raise
            self.set_error_status(exc)
            await self.show_form_error(exc)

    return wrapper


def declared_body_length(headers: httputil.HTTPHeaders) -> int | None:
    """The body length ``Content-Length`` announces (None without one).  Equal duplicates
    (``5, 5``, as some proxies send) count once; anything else is 400."""
    values = headers.get_list("Content-Length")  # not .get: a missing key costs it a KeyError, on every request
    if not values:
        return None
    lengths = {part.strip() for value in values for part in value.split(",")}
    length = lengths.pop() if len(lengths) == 1 else ""
    if not (length.isascii() and length.isdigit()):
        raise errors.BadRequest("Content-Length must be one whole number of bytes")
    return int(length)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.BadRequest("arguments must be UTF-8") from exc


def request_logger(every: bool) -> Callable[[tornado.web.RequestHandler], None]:
    """The access log (Tornado's ``log_function``): 5xx as errors, 4xx as warnings, and the rest at
    info with ``every`` (--access-log), else at debug: a line per success would cost every long-poll
    answer, so it is built only when the level is on.

    The path is logged without its query, and nothing of the headers or body: no token, cookie or
    message text reaches a log line.  The record carries the request fields for --log-format=json.
    """
    ok_level = logging.INFO if every else logging.DEBUG

    def log_request(handler: tornado.web.RequestHandler) -> None:
        status = handler.get_status()
        level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else ok_level
        if not access_log.isEnabledFor(level):
            return
        request = handler.request
        duration_ms = round(1000.0 * request.request_time(), 2)
        access_log.log(level, "%d %s %s (%s) %.2fms", status, request.method, request.path, request.remote_ip,
                       duration_ms, extra={"method": request.method, "path": request.path, "status": status,
                                           "duration_ms": duration_ms})
    return log_request


@tornado.web.stream_request_body
class BaseHandler(SessionMixin, OriginCheck):
    """Every HTTP handler.  The body streams in (``stream_request_body``), so that one over
    ``http_body_max_bytes`` gets ``413 payload_too_large`` however large it is, and at most the
    limit is ever held in memory:

    - ``Content-Length`` over the limit: the 413 is sent at once, before any of the body is read.
      Then the body is read through and dropped, up to ``BODY_DRAIN_MAX_BYTES`` and for at most
      ``BODY_DRAIN_TIMEOUT_S``, so that a client that sends its whole body before it reads (Python's
      http.client, requests) gets the answer rather than a reset; then the connection closes.  A
      larger body, or one the client holds back until ``100 Continue``, is not read at all.
    - a chunked body: counted as it arrives; the 413 goes as soon as it passes the limit, and the
      connection closes.

    The method runs once the whole body has come: ``request_body()`` and ``body_fields()`` read it.
    """

    _body: bytearray | None = None  # the body so far; None once the request was answered without it
    _drain_left = 0  # bytes of a refused body still to read through and drop

    def compute_etag(self) -> str | None:
        return None  # answers are live and never cached (no-store): hashing each body is wasted work

    def prepare(self) -> None:
        limit = self.config.http_body_max_bytes
        declared = declared_body_length(self.request.headers)
        if declared is not None and declared > limit:
            error = errors.PayloadTooLarge(f"request body over {limit} bytes")
            if declared > BODY_DRAIN_MAX_BYTES or self.request.headers.get("Expect", "").lower() == "100-continue":
                raise error  # answered, and the connection closed, with none of the body read
            self._drain_left = declared
            compat.read_body_through(self.request, declared, BODY_DRAIN_TIMEOUT_S)
            self.answer_now(error)
            return
        self._body = bytearray()

    def data_received(self, chunk: bytes) -> None:
        if self._drain_left:
            self._drain_left = max(0, self._drain_left - len(chunk))
            if not self._drain_left:
                self.finish()  # the answer went out already: this closes the connection
            return
        if self._body is None:
            return  # answered already: Tornado drops the rest and closes the connection
        self._body += chunk
        limit = self.config.http_body_max_bytes
        if len(self._body) > limit:
            self._body = None
            error = errors.PayloadTooLarge(f"request body over {limit} bytes")
            self.send_error(error.status, exc_info=(type(error), error, None))

    def answer_now(self, error: errors.ChatError) -> None:
        """Send the whole error answer (headers and body) without finishing the request."""
        self.set_error_status(error)
        body = self.error_body(error)
        self.set_header("Content-Length", str(len(body)))
        self.write(body)
        self.flush()

    def request_body(self) -> bytes:
        """The whole body (the method runs once it has all come), in ``request.body`` too."""
        if self._body is not None and not self.request.body:
            self.request.body = bytes(self._body)
            try:  # what Tornado does with a body it read itself
                httputil.parse_body_arguments(self.request.headers.get("Content-Type", ""), self.request.body,
                                              self.request.body_arguments, self.request.files, self.request.headers)
            except httputil.HTTPInputError as exc:
                raise errors.BadRequest(f"the body cannot be read: {exc}") from None
            for name, values in self.request.body_arguments.items():
                self.request.arguments.setdefault(name, []).extend(values)
        return self.request.body

    def set_default_headers(self) -> None:
        for name, value in DEFAULT_HEADERS:
            self.set_header(name, value)

    def wants_json(self) -> bool:
        accept = self.request.headers.get("Accept", "")
        return "application/json" in accept or self.is_json_body()

    def is_json_body(self) -> bool:
        return self.request.headers.get("Content-Type", "").split(";")[0].strip() == "application/json"

    def is_form_post(self) -> bool:
        """A browser form: cookie session and no ``Accept: application/json``."""
        return self.auth_via == "cookie" and "application/json" not in self.request.headers.get("Accept", "")

    def answers_with_form(self) -> bool:
        """Whether an error of this request shows the form again (see shows_form_errors)."""
        return self.is_form_post()

    async def show_form_error(self, exc: errors.ChatError) -> None:
        self.render_error_page(exc)

    def body_fields(self) -> dict[str, Any]:
        """Fields from a JSON object body or a form body, values as sent."""
        if self.is_json_body():
            try:
                data = loads(self.request_body() or b"{}")
            except ValueError as exc:
                raise errors.InvalidJSON("the body is not valid JSON") from exc
            if not isinstance(data, dict):
                raise errors.InvalidJSON("the body must be a JSON object")
            return data
        self.request_body()
        return {k: _decode(v[-1]) for k, v in self.request.body_arguments.items() if v}

    def send_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_CONTENT_TYPE)
        self.finish(obj if isinstance(obj, bytes) else dumps(obj))

    def send_json_answer(self, body: bytes) -> None:
        """``send_json(body)`` with its head from the parts made once (handlers/answers.py) and
        written in one send: for answers that go out in bulk (a woken room's long-polls)."""
        if not compat.finish_whole(self, self.config.json_answer.head(len(body)), body):
            self.send_json(body)


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise errors.NotFound(f"no such path: {self.request.path}")
