"""Every use of Tornado's private API, in one place, each pinned by tests/unit/test_compat.py.

On a Tornado upgrade, run those tests first: a failure names the function to fix here.
"""

from __future__ import annotations

from typing import Any

import tornado.web
import tornado.websocket
from tornado import httputil
from tornado.iostream import IOStream


def stream_backlog(stream: IOStream) -> int:
    """Bytes written to ``stream`` but not yet taken by the kernel.

    IOStream keeps no public count of unsent bytes; ``_write_buffer`` is its buffer.
    """
    buffer = getattr(stream, "_write_buffer", None)
    return len(buffer) if buffer is not None else 0


def request_stream_closed(request: httputil.HTTPServerRequest) -> bool:
    """True when the client of ``request`` has closed its connection.

    A client that closed while its request was still being read never gets
    ``on_connection_close`` (Tornado registers it only on an open stream): ask the stream.
    """
    stream = getattr(request.connection, "stream", None)
    return stream is None or stream.closed()


def websocket_stream(handler: tornado.websocket.WebSocketHandler) -> IOStream | None:
    """The open WebSocket's stream (None before the handshake and once closed)."""
    protocol: Any = handler.ws_connection
    return getattr(protocol, "stream", None) if protocol is not None else None


def drop_handshake_state(handler: tornado.websocket.WebSocketHandler) -> None:
    """Free what only the handshake needed: the request's headers and cookies and the 101
    answer's headers (about 2 KiB per member of a socket that lives for hours)."""
    handler.request.headers = httputil.HTTPHeaders()
    handler.request.__dict__.pop("_cookies", None)  # the cached_property behind request.cookies
    handler._headers = httputil.HTTPHeaders()


class OriginCheck(tornado.web.RequestHandler):
    """``cross_origin_protection`` parses Origin with urlsplit, which raises on malformed
    values such as ``http://[``: refuse those (403) instead of a 500."""

    def _origin_matches_host(self, origin: str) -> bool:
        try:
            return super()._origin_matches_host(origin)  # private in Tornado 6.6
        except ValueError:
            return False
