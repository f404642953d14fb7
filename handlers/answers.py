"""A JSON answer's bytes, built from parts made once: for the long-poll, whose answers go out a
thousand at a time when an event wakes the room.

Tornado builds every answer's headers anew (an ``HTTPHeaders`` per request, each value checked,
each line formatted and checked again, then joined), which was most of the server's time per
long-poll answer (docs/performance.md, "Long-poll answers").  The headers of a ``200`` JSON answer
are the same every time but for ``Date`` (the same for a whole second) and ``Content-Length``:
:class:`JsonAnswer` keeps the rest as bytes and puts an answer together with one join.  It writes
exactly what Tornado writes, in Tornado's order (``Server``, ``Content-Type``, ``Date``, the
defaults of :data:`DEFAULT_HEADERS`, ``Content-Length``; ``Connection`` is added by
:func:`handlers.compat.finish_whole`, last, as Tornado adds it); tests/http/test_longpoll_wire.py
holds it to the answer Tornado writes for another JSON request.
"""

from __future__ import annotations

import time

import tornado
from tornado.httputil import format_timestamp

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
# Every page's scripts and styles are files of its own (static/), never inline; nothing may frame it.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# The headers every HTTP answer carries (BaseHandler.set_default_headers), in this order.
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),  # frame-ancestors, for browsers without CSP 2
)


def _lines(pairs: tuple[tuple[str, str], ...]) -> bytes:
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in pairs)


class JsonAnswer:
    """The head of a ``200`` JSON answer, from parts made once (``Date`` once a second)."""

    __slots__ = ("_date", "_second", "after_date", "before_date")

    def __init__(self) -> None:
        # What Tornado's RequestHandler.clear sets first (Server, then Content-Type, whose value
        # send_json replaces in place), then Date, then the defaults.
        self.before_date = b"HTTP/1.1 200 OK\r\n" + _lines(
            (("Server", f"TornadoServer/{tornado.version}"), ("Content-Type", JSON_CONTENT_TYPE)))
        self.after_date = _lines(DEFAULT_HEADERS)
        self._second = -1  # the whole second (Unix time) _date is for
        self._date = b""

    def head(self, body_bytes: int) -> bytes:
        """The status line and headers (each line ending in CRLF, the blank line not included)
        of an answer whose body is ``body_bytes`` long."""
        now = int(time.time())
        if now != self._second:
            self._second, self._date = now, b"Date: %s\r\n" % format_timestamp(now).encode()
        return b"%s%s%sContent-Length: %d\r\n" % (self.before_date, self._date, self.after_date, body_bytes)
