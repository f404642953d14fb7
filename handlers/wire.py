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
queued whole, so the close frame that follows lands on a frame boundary.
"""

from __future__ import annotations

import socket

from tornado.iostream import IOStream

from .compat import stream_backlog


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
