"""Pins for the private Tornado that handlers/compat.py uses for WebSockets.

Each test names what it pins; on a Tornado upgrade a failure here says which part of
``compat.StrictProtocol13``, ``compat.StrictWebSocketHandler`` or ``compat.stream_backlog``
to look at (tests/http/test_ws_protocol.py and test_ws_slow_close.py check the behaviour).
"""

from __future__ import annotations

import asyncio
import inspect
import socket
from typing import Any

import tornado.websocket
from tornado.iostream import IOStream
from tornado.util import _websocket_mask  # type: ignore[attr-defined]
from tornado.websocket import WebSocketHandler, WebSocketProtocol, WebSocketProtocol13

from handlers import compat


def source(obj: Any) -> str:
    return inspect.getsource(obj)


class Handler:
    """The least a protocol asks of its handler at construction."""


def strict_protocol() -> compat.StrictProtocol13:
    params = tornado.websocket._WebSocketParams(  # type: ignore[attr-defined]
        ping_interval=None, ping_timeout=None, max_message_size=1024, compression_options=None)
    return compat.StrictProtocol13(Handler(), params, 30.0)  # type: ignore[arg-type]


def test_the_protocol_state_strict_protocol_reads_and_writes_is_tornados():
    proto = strict_protocol()
    for name in ("_wire_bytes_in", "_ping_coroutine", "client_terminated", "server_terminated", "close_code",
                 "close_reason", "params", "handler", "stream"):
        assert hasattr(proto, name), name
    assert proto.params.max_message_size == 1024
    assert (proto.FIN, proto.RSV_MASK, proto.OPCODE_MASK) == (0x80, 0x70, 0x0F)
    for name in ("_read_bytes", "_write_frame", "_run_callback", "_handle_message", "_receive_frame", "_abort"):
        assert callable(getattr(WebSocketProtocol13, name, None)), name


def test_the_frame_loop_calls_receive_frame_until_the_client_is_done_then_tells_the_handler():
    loop = source(WebSocketProtocol13._receive_frame_loop)
    assert "while not self.client_terminated" in loop
    assert "await self._receive_frame()" in loop
    assert "except StreamClosedError" in loop and "self._abort()" in loop
    assert "self.handler.on_ws_connection_close(self.close_code, self.close_reason)" in loop
    assert "self._wire_bytes_in" in loop  # how often it yields: StrictProtocol13 counts what it drops
    assert "self._wire_bytes_in += n" in source(WebSocketProtocol13._read_bytes)


def test_tornado_aborts_through_on_connection_close_and_abort():
    assert "self._abort()" in source(WebSocketProtocol.on_connection_close)
    abort = source(WebSocketProtocol._abort)
    assert "self.stream.close()" in abort and "self.close()" in abort
    # the handler tells its protocol when the connection goes, unless it closed it itself
    assert "self.ws_connection.on_connection_close()" in source(WebSocketHandler.on_connection_close)


def test_the_handler_picks_its_protocol_with_get_websocket_protocol():
    get = source(WebSocketHandler.get)
    assert "self.ws_connection = self.get_websocket_protocol()" in get
    assert "accept_connection(self)" in get
    assert list(inspect.signature(tornado.websocket._WebSocketParams).parameters) == [  # type: ignore[attr-defined]
        "ping_interval", "ping_timeout", "max_message_size", "compression_options"]


def test_handle_message_and_write_frame_take_what_strict_protocol_passes():
    assert list(inspect.signature(WebSocketProtocol13._handle_message).parameters) == ["self", "opcode", "data"]
    assert list(inspect.signature(WebSocketProtocol13._write_frame).parameters)[:4] == ["self", "fin", "opcode",
                                                                                         "data"]
    assert list(inspect.signature(WebSocketProtocol13._read_bytes).parameters) == ["self", "n"]
    pong = source(WebSocketProtocol13._handle_message)
    assert "self._send_pong(data)" in pong and "self.handler.on_pong" in pong


def test_websocket_mask_unmasks():
    mask = b"\x01\x02\x03\x04"
    data = b"halo, dunia"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert _websocket_mask(mask, masked) == data


def test_stream_backlog_counts_the_bytes_the_kernel_has_not_taken():
    async def run() -> None:
        ours, theirs = socket.socketpair()
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        ours.setblocking(False)
        stream = IOStream(ours)
        assert compat.stream_backlog(stream) == 0
        stream.write(b"x" * (4 << 20))  # far more than the kernel buffers hold; nobody reads
        assert 0 < compat.stream_backlog(stream) <= 4 << 20
        stream.close()
        theirs.close()
    asyncio.run(run())
