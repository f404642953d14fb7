"""Every use of Tornado's private API, in one place, each pinned by a test.

The WebSocket and request ones by tests/unit/test_compat.py; the response-stream ones
(:func:`response_stream`, :func:`response_is_chunked`) by tests/http/test_events_wire.py.

On a Tornado upgrade, run those tests first: a failure names the function to fix here.
"""

from __future__ import annotations

import socket
import struct
from asyncio import Future
from typing import Any

import tornado.web
import tornado.websocket
from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.iostream import IOStream, StreamClosedError
from tornado.util import _websocket_mask  # private: the unmasking in C, when built

from .frames import CLOSE_INVALID_PAYLOAD, CLOSE_MESSAGE_TOO_BIG, CLOSE_PROTOCOL_ERROR, PEER_CLOSE_CODES


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


def finish_whole(handler: tornado.web.RequestHandler, head: bytes, body: bytes) -> bool:
    """Finish ``handler``'s request with ``head`` (status line and headers, each line ending in
    CRLF, without the blank line) and ``body``, written in one ``send`` when nothing is queued,
    bypassing ``RequestHandler.finish`` and ``HTTP1Connection.write_headers``.  False, with nothing
    done, where Tornado would write something else (not a plain HTTP/1 connection, a transform
    such as gzip, headers written already, the connection gone): the caller finishes as usual.
    :func:`send_whole` then :func:`finish_sent`, one after the other.
    """
    unsent = send_whole(handler, head, body)
    if unsent is None:
        return False
    finish_sent(handler, unsent)
    return True


def send_whole(handler: tornado.web.RequestHandler, head: bytes, body: bytes,
               joined: bytes | None = None) -> bytes | memoryview | None:
    """The first half of :func:`finish_whole`: the answer's bytes go to the kernel in one ``send``
    (nothing else: it is made to be called a thousand times in a row, from a woken room, with
    ``joined``, the head, the blank line and the body, made once for all of them).  What the
    kernel did not take is returned, for :func:`finish_sent`, which must follow; None, with
    nothing done, where Tornado would write something else.

    What Tornado does around the write is kept: ``Connection: close`` to an HTTP/1.1 client whose
    connection will close, ``Connection: Keep-Alive`` to an HTTP/1.0 client that asked for it (the
    private ``HTTP1Connection._disconnect_on_finish`` says which), and the private
    ``_headers_written``.  Pinned by tests/unit/test_compat.py.
    """
    request = handler.request
    connection = request.connection
    if type(connection) is not HTTP1Connection or handler._headers_written or handler._finished \
            or handler.application.transforms:
        return None
    stream = connection.stream
    if stream.closed():
        return None
    if request.version == "HTTP/1.1":
        if connection._disconnect_on_finish:
            joined = b"%sConnection: close\r\n\r\n%s" % (head, body)
    elif request.headers.get("Connection", "").lower() == "keep-alive":
        joined = b"%sConnection: Keep-Alive\r\n\r\n%s" % (head, body)
    data = b"%s\r\n%s" % (head, body) if joined is None else joined
    handler._headers_written = True
    if type(stream) is not IOStream or stream.writing():  # TLS encrypts through its SSL object
        return data
    try:
        sent = stream.socket.send(data)
    except (BlockingIOError, InterruptedError):
        return data
    except OSError as exc:  # reset or broken pipe: the peer is gone
        stream.close(exc_info=exc)
        return b""
    return b"" if sent == len(data) else memoryview(data)[sent:]


def finish_sent(handler: tornado.web.RequestHandler, unsent: bytes | memoryview) -> None:
    """The second half of :func:`finish_whole`: queue what the kernel did not take, then end the
    request as ``RequestHandler.finish`` does after its write.

    ``HTTP1Connection.finish`` (public) ends the request (keep-alive, or the close) once the
    private ``_pending_write`` is written; on the handler: the private ``_finished``, the access
    log (``Application.log_request``), ``on_finish`` and ``_break_cycles``.
    """
    connection = handler.request.connection
    assert isinstance(connection, HTTP1Connection)
    connection.set_close_callback(None)  # as RequestHandler.finish: the handler can be collected
    if unsent and not connection.stream.closed():
        connection._pending_write = connection.stream.write(unsent)  # finish waits for it
    connection.finish()
    handler._finished = True
    handler.application.log_request(handler)
    handler.on_finish()
    handler._break_cycles()


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


def read_body_through(request: httputil.HTTPServerRequest, max_bytes: int, timeout_s: float) -> None:
    """Let the connection read a body of up to ``max_bytes`` (over the server's ``max_body_size``,
    which Tornado would otherwise refuse with a bare 400 after ``prepare``), for ``timeout_s``.

    ``set_max_body_size`` and ``set_body_timeout`` are public on ``HTTP1Connection`` but not on
    the ``HTTPConnection`` interface ``request.connection`` is typed as.  What relies on Tornado's
    inner workings: a ``stream_request_body`` handler that finishes while its body is still
    arriving is told ``on_connection_close`` once the body has been read (no method runs), and the
    connection then closes.
    """
    connection: Any = request.connection
    connection.set_max_body_size(max_bytes)
    connection.set_body_timeout(timeout_s)


class OriginCheck(tornado.web.RequestHandler):
    """``cross_origin_protection`` parses Origin with urlsplit, which raises on malformed
    values such as ``http://[``: refuse those (403) instead of a 500."""

    def _origin_matches_host(self, origin: str) -> bool:
        try:
            return super()._origin_matches_host(origin)  # private in Tornado 6.6
        except ValueError:
            return False


# -- RFC 6455 as a server must enforce it ----------------------------------------------------------

CLOSE_REPLY_WAIT_S = 5.0  # once our close frame has left, how long the peer has to answer it (Tornado's own)
DISCARD_READ_BYTES = 64 * 1024  # read at a time, and dropped, from a peer whose connection failed
DATA_OPCODES = frozenset([0x0, 0x1, 0x2])  # continuation, text, binary
CONTROL_OPCODES = frozenset([0x8, 0x9, 0xA])  # close, ping, pong
MAX_CONTROL_PAYLOAD_BYTES = 125


class StrictProtocol13(tornado.websocket.WebSocketProtocol13):
    """Tornado's RFC 6455 protocol, with every rule a server must enforce, and a close frame that
    is never lost to a hurried teardown.

    Tornado accepts unmasked client frames, echoes any close code, and drops the TCP connection
    without a close frame on RSV bits, unknown opcodes, oversized or fragmented control frames
    and text that is not UTF-8.  Here each fails the connection as RFC 6455 section 7.1.7 says:
    a close frame with 1002 (1007 for UTF-8, 1009 for size), no further frame read, and the
    stream closed once that close frame has left.  No extension is ever agreed (compression is
    off), so any RSV bit is an error.

    Tornado closes the stream 5 s after its close frame was *written*, and at once when the frame
    loop ends (the peer's close frame came, the connection failed): a close frame still queued
    behind a slow reader's backlog is then lost, with the end of a frame.  Here the stream stays
    until the close frame has left for the kernel, at most ``drain_timeout_s`` (the caller cut the
    backlog first), then the peer has :data:`CLOSE_REPLY_WAIT_S` to answer it, as in Tornado.

    Private Tornado used (pinned by tests/unit/test_ws_compat.py): ``_receive_frame`` (replaced),
    ``_handle_message``, ``_abort``, ``close`` (overridden), ``_read_bytes``, ``_write_frame``,
    ``_run_callback``, ``_wire_bytes_in``, ``_ping_coroutine``, ``_WebSocketParams``,
    ``tornado.util._websocket_mask``; and that ``_receive_frame_loop`` calls ``_receive_frame``
    until ``client_terminated``, then ``handler.on_ws_connection_close``.
    """

    # Slots for what this class adds: on the base's instance dict they would make it grow to the
    # next size, about 1.5 KiB more per connection (docs/performance.md, idle WebSockets).
    __slots__ = (
        "_close_sent",
        "_deadline",
        "_failed",
        "_half_closed",
        "_partial",
        "_partial_opcode",
        "drain_timeout_s",
    )

    def __init__(self, handler: tornado.websocket.WebSocketHandler, params: Any, drain_timeout_s: float) -> None:
        super().__init__(handler, False, params)
        self.drain_timeout_s = drain_timeout_s
        self._close_sent: Future[None] | None = None  # the write of our close frame
        self._partial: bytearray | None = None  # a fragmented message so far
        self._partial_opcode = 0  # and its opcode (text or binary)
        self._failed = False  # the peer broke the protocol: its bytes are read and dropped
        self._half_closed = False  # (after a failure) a FIN has followed our close frame
        self._deadline: object | None = None  # the IOLoop timeout that closes the stream regardless

    # -- reading --------------------------------------------------------------------

    async def _receive_frame(self) -> None:
        if self._failed:  # keep the kernel's receive queue empty, so the close is a FIN, not a reset
            data = await self.stream.read_bytes(DISCARD_READ_BYTES, partial=True)
            self._wire_bytes_in += len(data)
            return
        first, second = await self._read_bytes(2)
        fin = bool(first & self.FIN)
        opcode = first & self.OPCODE_MASK
        control = opcode in CONTROL_OPCODES
        length = second & 0x7F
        if first & self.RSV_MASK:
            return self._fail(CLOSE_PROTOCOL_ERROR, "RSV bits set, and no extension was agreed")
        if not control and opcode not in DATA_OPCODES:
            return self._fail(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        if not second & 0x80:
            return self._fail(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
        if control and length > MAX_CONTROL_PAYLOAD_BYTES:
            return self._fail(CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes")
        if control and not fin:
            return self._fail(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
        if length == 126:
            length = struct.unpack("!H", await self._read_bytes(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self._read_bytes(8))[0]
            if length >> 63:
                return self._fail(CLOSE_PROTOCOL_ERROR, "payload length over 2**63")
        pending = self._partial
        if not control:
            if opcode == 0 and pending is None:
                return self._fail(CLOSE_PROTOCOL_ERROR, "continuation frame with no message to continue")
            if opcode != 0 and pending is not None:
                return self._fail(CLOSE_PROTOCOL_ERROR, "new message before the last one's final frame")
            if length + (len(pending) if pending is not None else 0) > self.params.max_message_size:
                return self._fail(CLOSE_MESSAGE_TOO_BIG, "message too big")
        masked = await self._read_bytes(4 + length)  # the mask and the payload: one read, not two
        data = _websocket_mask(masked[:4], masked[4:]) if length else b""
        if opcode == 0:
            assert pending is not None
            pending.extend(data)
            if not fin:
                return
            opcode, data = self._partial_opcode, bytes(pending)
            self._partial = None
        elif not control and not fin:
            self._partial_opcode = opcode
            self._partial = bytearray(data)
            return
        handled = self._handle_message(opcode, data)
        if handled is not None:
            await handled

    def _handle_message(self, opcode: int, data: bytes) -> Future[None] | None:
        if self.client_terminated or self._failed:
            return None
        if opcode == 0x1:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                self._fail(CLOSE_INVALID_PAYLOAD, "text message is not UTF-8")
                return None
            return self._run_callback(self.handler.on_message, text)
        if opcode == 0x8:
            self._close_received(data)
            return None
        return super()._handle_message(opcode, data)  # binary, ping, pong

    def _close_received(self, data: bytes) -> None:
        code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        if len(data) == 1 or (code is not None and code not in PEER_CLOSE_CODES):
            self._fail(CLOSE_PROTOCOL_ERROR, "invalid close code")
            return
        try:
            reason = data[2:].decode("utf-8") if len(data) > 2 else None
        except UnicodeDecodeError:
            self._fail(CLOSE_INVALID_PAYLOAD, "close reason is not UTF-8")
            return
        self.client_terminated = True
        self.close_code, self.close_reason = code, reason
        self.close(code)  # echo the code (RFC 6455 section 5.5.1)

    def _fail(self, code: int, reason: str) -> None:
        """_Fail the WebSocket Connection_: say why in a close frame, read no further frame, and
        tell the handler now (the member goes at once; the stream, once the close frame has left)."""
        self._failed = True
        self._partial = None
        self.close(code, reason)
        self.handler.on_ws_connection_close(None, None)

    # -- closing --------------------------------------------------------------------

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self.server_terminated:
            self.server_terminated = True
            if not self.stream.closed():
                if code is None and reason is not None:
                    code = 1000  # "normal closure"
                data = b"" if code is None else struct.pack("!H", code)
                if reason is not None:  # at most 125 bytes in all, cut between characters
                    room = MAX_CONTROL_PAYLOAD_BYTES - len(data)
                    data += reason.encode("utf-8")[:room].decode("utf-8", "ignore").encode("utf-8")
                try:
                    sent = self._write_frame(True, 0x8, data)
                except StreamClosedError:
                    sent = None
                if sent is not None and not sent.done():  # behind bytes the kernel has not taken
                    self._close_sent = sent
                    sent.add_done_callback(self._close_frame_left)
                    self._close_by(self.drain_timeout_s)
                else:
                    self._close_by(CLOSE_REPLY_WAIT_S)
        if self._ping_coroutine:
            self._ping_coroutine.cancel()
            self._ping_coroutine = None
        if self.client_terminated or self._failed:
            self._finish()

    def on_connection_close(self) -> None:
        if not self._failed:  # (after a failure the handler was told by _fail; the close goes on)
            self._abort()

    def _abort(self) -> None:
        """Tornado's teardown (the frame loop ended, a read failed, a callback raised): at once,
        unless our close frame is still on its way: then once it has left, or at the deadline."""
        self.client_terminated = True
        self.server_terminated = True
        self.close()  # writes nothing now; closes the stream, or lets the close frame go first

    def _finish(self) -> None:
        """Our close frame is sent or being sent, and the peer is done (or failed): close the
        stream as soon as the close frame has left."""
        sent = self._close_sent
        if self.stream.closed():
            self._give_up()
        elif sent is not None and not sent.done():
            pass  # _close_frame_left calls again; the deadline set with the frame bounds the wait
        elif self._failed and not self.client_terminated:
            if self._half_closed:
                return
            # The peer may still be sending: closing now could answer it with a reset, which can
            # take our close frame with it.  Half-close (a FIN after the close frame) and keep
            # reading, dropping it, until the peer closes too, or the deadline.
            self._half_closed = True
            try:
                self.stream.socket.shutdown(socket.SHUT_WR)
            except OSError:
                self._give_up()
                return
            self._close_by(CLOSE_REPLY_WAIT_S)
        else:
            self._give_up()

    def _close_frame_left(self, _sent: Future[None]) -> None:
        if self.stream.closed() or self.client_terminated or self._failed:
            self._finish()
        else:
            self._close_by(CLOSE_REPLY_WAIT_S)  # the peer's turn to answer, now that it can

    def _close_by(self, delay_s: float) -> None:
        loop = self.stream.io_loop
        if self._deadline is not None:
            loop.remove_timeout(self._deadline)
        self._deadline = loop.add_timeout(loop.time() + delay_s, self._give_up)

    def _give_up(self) -> None:
        if self._deadline is not None:
            self.stream.io_loop.remove_timeout(self._deadline)
            self._deadline = None
        self.client_terminated = True
        self.server_terminated = True
        self.stream.close()  # the frame loop's read fails, and it ends


class StrictWebSocketHandler(tornado.websocket.WebSocketHandler):
    """A WebSocketHandler whose connections are :class:`StrictProtocol13`.

    ``get_websocket_protocol`` is undocumented (``WebSocketHandler.get`` calls it to pick the
    protocol), and so is ``_WebSocketParams``: pinned by tests/unit/test_ws_compat.py.
    """

    @property
    def close_drain_timeout_s(self) -> float:
        """How long a close frame stuck behind unsent bytes may take to leave before the stream
        is closed regardless (here Tornado's own wait; a subclass says how long its readers get)."""
        return CLOSE_REPLY_WAIT_S

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        if self.request.headers.get("Sec-WebSocket-Version") != "13":
            return None
        params = tornado.websocket._WebSocketParams(
            ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
            max_message_size=self.max_message_size, compression_options=None)
        return StrictProtocol13(self, params, self.close_drain_timeout_s)
