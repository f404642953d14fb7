"""Every use of Tornado's private API, in one place, each pinned by a test.

The WebSocket and request ones by tests/unit/test_compat.py; the response-stream ones
(:func:`response_stream`, :func:`response_is_chunked`) by tests/http/test_events_wire.py.

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


def response_stream(request: httputil.HTTPServerRequest) -> IOStream | None:
    """The HTTP/1 connection's stream, to write a long response's body to it directly
    (None when the connection is not HTTP/1, or has gone).

    ``HTTP1Connection.stream`` is an undocumented attribute.
    """
    stream = getattr(request.connection, "stream", None)
    return stream if isinstance(stream, IOStream) and not stream.closed() else None


def response_is_chunked(request: httputil.HTTPServerRequest) -> bool:
    """Whether the response whose headers were written frames its body in chunks.

    Tornado decides in ``HTTP1Connection.write_headers`` (HTTP/1.1, no Content-Length:
    chunked; HTTP/1.0: the body ends when the connection closes) and keeps the answer in
    the private ``_chunking_output``.
    """
    return bool(getattr(request.connection, "_chunking_output", False))


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
