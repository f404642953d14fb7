"""One timer per application for every open connection: WebSocket pings, stream heartbeats.

:class:`Pinger`: one timer that pings every open WebSocket and drops those that stopped answering.

Tornado's own ``websocket_ping_interval`` runs a task per socket that sleeps
between pings: about 1.7 KiB per idle member.  Here one timer per application
does a round every ``interval_s``, :data:`PING_SLICE` sockets per loop callback: a
socket that has not answered the previous round's ping is closed (as Tornado does
when its ping times out, with the ping timeout equal to the interval), the others
are pinged again.

:class:`Heartbeat`: one timer that has every open event stream write a keep-alive line
every ``interval_s`` (an SSE comment, an ndjson ping), so proxies between the server and
a quiet room's readers do not time the stream out.  A dead reader shows itself when a
write fails; a stuck one when its backlog passes the limit.
"""

from __future__ import annotations

from typing import Protocol

from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError

PING_SLICE = 256  # connections handled per loop callback (pings and heartbeats alike)


class Pingable(Protocol):
    def ping(self, data: bytes = b"") -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class Pinger:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._answered: dict[Pingable, bool] = {}  # socket -> answered since the last ping
        self._timer: object | None = None

    def add(self, sock: Pingable) -> None:
        if self.interval_s <= 0:
            return
        self._answered[sock] = True
        if self._timer is None:
            self._timer = IOLoop.current().call_later(self.interval_s, self._round)

    def pong(self, sock: Pingable) -> None:
        if sock in self._answered:
            self._answered[sock] = True

    def discard(self, sock: Pingable) -> None:
        self._answered.pop(sock, None)

    def _round(self) -> None:
        self._timer = None
        self._check(list(self._answered), 0)

    def _check(self, sockets: list[Pingable], start: int) -> None:
        # In slices, so a round over many thousand sockets never holds the loop for long.
        for sock in sockets[start:start + PING_SLICE]:
            answered = self._answered.get(sock)
            if answered is None:
                continue  # closed meanwhile
            if not answered:
                del self._answered[sock]
                sock.close(reason="ping timed out")
                continue
            self._answered[sock] = False
            try:
                sock.ping()
            except WebSocketClosedError:
                del self._answered[sock]
        if start + PING_SLICE < len(sockets):
            IOLoop.current().add_callback(self._check, sockets, start + PING_SLICE)
        elif self._answered and self._timer is None:
            self._timer = IOLoop.current().call_later(self.interval_s, self._round)


class Beating(Protocol):
    def heartbeat(self) -> None: ...


class Heartbeat:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._streams: dict[Beating, None] = {}  # insertion-ordered set
        self._timer: object | None = None

    def add(self, stream: Beating) -> None:
        if self.interval_s <= 0:
            return
        self._streams[stream] = None
        if self._timer is None:
            self._timer = IOLoop.current().call_later(self.interval_s, self._round)

    def discard(self, stream: Beating) -> None:
        self._streams.pop(stream, None)

    def __len__(self) -> int:
        return len(self._streams)

    def _round(self) -> None:
        self._timer = None
        self._beat(list(self._streams), 0)

    def _beat(self, streams: list[Beating], start: int) -> None:
        for stream in streams[start:start + PING_SLICE]:
            if stream in self._streams:  # not ended meanwhile
                stream.heartbeat()
        if start + PING_SLICE < len(streams):
            IOLoop.current().add_callback(self._beat, streams, start + PING_SLICE)
        elif self._streams and self._timer is None:
            self._timer = IOLoop.current().call_later(self.interval_s, self._round)
