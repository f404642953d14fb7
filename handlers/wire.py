"""Writing pre-built bytes to a client's socket without a Future per write.

Tornado's ``IOStream.write`` allocates a Future and runs its write machinery on
every call; in a broadcast to many members that, not the kernel, is most of the
cost.  When the stream has nothing queued, the kernel usually takes the whole
write at once, so :class:`DirectWriter` calls ``socket.send`` itself and hands
the stream only what the kernel did not take (a partial write, or ``EAGAIN``).
While the stream still holds bytes, every later write goes behind them through
the stream, so the order on the wire is always the order of the calls and a
frame is never split by another write.

Unsent bytes are bounded: :meth:`DirectWriter.write` says when the backlog has
passed the limit and the caller closes the connection (a slow reader resumes
later from its cursor).  The bytes of the write that crossed the limit are still
queued whole, so what the caller writes next lands on a boundary of its own.

:class:`FrameWriter` (a WebSocket's) keeps what the kernel did not take in a queue
of its own, whole writes (whole frames) that it hands the stream a chunk at a time,
so that a reader closed as too slow loses the unsent part at a frame boundary
(:meth:`FrameWriter.cut`) and its close frame goes out right after the chunk
already on its way, instead of behind the whole backlog.
"""

from __future__ import annotations

import socket
from asyncio import Future
from collections import deque

from tornado.iostream import IOStream

from .compat import stream_backlog

CHUNK_BYTES = 64 * 1024  # queued writes handed to a backlogged stream at once (at least one whole write)


class DirectWriter:
    """Writes for one connection: the kernel first, the stream's buffer for the rest."""

    __slots__ = ("limit", "sock", "stream")

    def __init__(self, stream: IOStream, limit_bytes: int) -> None:
        self.stream = stream
        self.limit = limit_bytes
        # A TLS stream must encrypt through its SSL object: only a plain IOStream is bypassed.
        self.sock: socket.socket | None = stream.socket if type(stream) is IOStream else None

    def backlog(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return stream_backlog(self.stream)

    def write(self, data: bytes) -> bool:
        """Send ``data`` after everything written before; False once the backlog passes the limit.

        A closed stream takes nothing (its connection is being torn down and its
        owner told); a socket error closes the stream, as the stream itself would.
        """
        stream = self.stream
        if stream.closed():
            return True
        if self.sock is not None and not stream.writing():
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:  # reset or broken pipe: the peer is gone
                stream.close(exc_info=exc)
                return True
            if sent == len(data):
                return True
            stream.write(memoryview(data)[sent:])  # the rest, in order, when the socket is writable
        else:
            stream.write(data)
        return self.backlog() <= self.limit


class FrameWriter(DirectWriter):
    """A :class:`DirectWriter` whose every write is whole frames, and whose backlog can be cut.

    The kernel first, as ever.  What it does not take: the rest of that write goes to
    the stream (it may end mid-frame, and only the stream can finish it), and every
    later write waits here, whole, until the stream has sent what it holds; then up to
    :data:`CHUNK_BYTES` of them (at least one) go to the stream together.  Control
    frames Tornado writes itself (pings, pongs, the close frame) go straight to the
    stream, between two of ours, which is where RFC 6455 lets them go.
    """

    __slots__ = ("_chunk", "_cut", "_queue", "_queued")

    def __init__(self, stream: IOStream, limit_bytes: int) -> None:
        super().__init__(stream, limit_bytes)
        # Whole writes the stream has not been given yet; made on the first wait (an empty deque
        # is ~600 bytes, and most sockets never wait: docs/performance.md, idle WebSockets).
        self._queue: deque[bytes] | None = None
        self._queued = 0  # bytes in _queue
        self._chunk: Future[None] | None = None  # the stream's write of ours still going (None: none)
        self._cut = False

    def backlog(self) -> int:
        """Bytes written but not yet taken by the kernel: the stream's and the queue's."""
        return stream_backlog(self.stream) + self._queued

    def write(self, data: bytes) -> bool:
        """Send ``data`` (whole frames) after everything written before; False once the backlog
        passes the limit.  After :meth:`cut`, and on a closed stream, writes nothing."""
        stream = self.stream
        if self._cut or stream.closed():
            return True
        if self._chunk is not None:  # the stream is still busy with ours: wait here, whole
            if self._queue is None:
                self._queue = deque()
            self._queue.append(data)
            self._queued += len(data)
        elif self.sock is not None and not stream.writing():
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:  # reset or broken pipe: the peer is gone
                stream.close(exc_info=exc)
                return True
            if sent == len(data):
                return True
            self._hand(memoryview(data)[sent:] if sent else data)  # the rest, maybe from mid-frame
        else:  # TLS, or the stream is sending a ping or pong of Tornado's: behind it, in one piece
            self._hand(data)
        return self.backlog() <= self.limit

    def cut(self) -> int:
        """Drop every write the stream has not been given (they start on frame boundaries) and
        take no more; what the stream holds still goes.  Returns the bytes dropped."""
        dropped = self._queued
        if self._queue is not None:
            self._queue.clear()
        self._queued = 0
        self._cut = True
        return dropped

    def _hand(self, data: bytes | memoryview) -> bool:
        """Give the stream ``data``; True when the kernel took it all at once."""
        chunk = self.stream.write(data)
        if chunk.done():
            return True
        self._chunk = chunk
        chunk.add_done_callback(self._chunk_sent)
        return False

    def _chunk_sent(self, chunk: Future[None]) -> None:
        self._chunk = None
        if chunk.cancelled() or chunk.exception() is not None or self.stream.closed():
            self.cut()  # the connection is gone: nothing more will go
            return
        queue = self._queue
        while queue and not self.stream.closed():  # (None or empty: nothing waits)
            parts = [queue.popleft()]
            size = len(parts[0])
            while queue and size + len(queue[0]) <= CHUNK_BYTES:
                parts.append(queue.popleft())
                size += len(parts[-1])
            self._queued -= size
            if not self._hand(parts[0] if len(parts) == 1 else b"".join(parts)):
                return  # the rest waits for this chunk
