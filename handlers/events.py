"""``GET /rooms/<room>/events``: a room as a stream of Server-Sent Events or ndjson lines.

Like the WebSocket (handlers/ws.py) a stream is a live connection of its session:
``prepare`` parses and authorises, ``get`` runs inside ``async with hub.join(...)``,
attaches after the cursor (``after=``, or ``Last-Event-ID``, which wins) and then waits
for the end.  Whatever can refuse the stream (bad input, no session, a foreign origin, a
taken name, a store that cannot be read) does so before the headers, as a JSON error.

After the headers (written by Tornado, which picks the framing) the opening goes out
(hello, the replay, the user list), then the hub's batches, written through a
:class:`~handlers.wire.DirectWriter` on the connection's own stream in the bytes every
reader of the room shares (:mod:`handlers.streams`).  Every ending writes a last item
saying why (``{"type":"end","reason":...}``): the user left, the server is restarting,
the room's history started over, or the reader fell more than ``--max-backlog`` behind.
"""

from __future__ import annotations

import asyncio
import logging

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from rooms import Ending, Hub, errors
from rooms.members import Membership
from rooms.models import Batch, Payload, Slice

from . import compat, frames
from .base import AppConfig, BaseHandler, origin_allowed
from .streams import batch_bytes, choose_format, end_bytes, frame, heartbeat_bytes, resume_cursor
from .wire import DirectWriter

log = logging.getLogger("obrolan.events")

STREAM_DRAIN_TIMEOUT_S = 5.0  # an ended stream's unsent bytes get this long to leave; then the connection is closed


class EventsHandler(BaseHandler):
    transport = "stream"  # rooms.ports.Listener, for metrics
    member: Membership | None = None
    _writer: DirectWriter | None = None
    _chunked = True
    _beat = b""
    _gone = False  # the client closed the connection

    def initialize(self, hub: Hub, config: AppConfig) -> None:
        super().initialize(hub, config)
        # Resolved by end() (with why) or when the client goes (None); exists before prepare()
        # runs, since the connection may close first.
        self._ended: asyncio.Future[Ending | None] = asyncio.get_running_loop().create_future()

    def prepare(self) -> None:
        super().prepare()
        origin = self.request.headers.get("Origin")
        if origin is not None and not origin_allowed(origin, self.request.host, self.config.allowed_origins):
            raise errors.Forbidden("cross-origin event stream refused: this origin is not allowed")
        self.room = self.path_room(self.path_args[0])
        self.session = self.require_session()
        self.stream_format = choose_format(self.raw_query("format"), self.request.headers.get("Accept", ""))
        self.after = resume_cursor(self.raw_query("after"), self.request.headers.get("Last-Event-ID"))
        self.epoch = self.raw_query("epoch") or None
        if origin is not None and origin.rstrip("/") in self.config.allowed_origins:
            self.set_header("Access-Control-Allow-Origin", origin.rstrip("/"))  # EventSource withCredentials
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.set_header("Vary", "Origin")

    async def get(self, room: str) -> None:
        if self.has_left(self.room, self.session):  # in another tab: said as to a stream in progress
            self._start(b"")
            self.end(Ending.LEFT)
            await self._ended
            return
        # Joining may refuse (409 name taken, 503 unavailable), and so may the replay: still JSON errors.
        async with self.hub.join(self.room, self.session, self) as self.member:
            if self._gone or compat.request_stream_closed(self.request):
                return
            sl = await self.member.attach(self.after, self.epoch)
            if sl is not None:
                self._start(self._opening(sl))
            elif not self._gone:  # the session left the room while we read
                self._start(b"")
                self.end(Ending.LEFT)
            await self._ended
        # Tornado now finishes the response (the last, empty chunk); see on_finish.

    def _opening(self, sl: Slice) -> bytes:
        assert self.member is not None
        fmt = self.stream_format
        hello = frames.hello_payload(sl.epoch, sl.truncated, sl.cursor, self.session.name)
        return b"".join([fmt.preamble, fmt.encode(hello), fmt.items(e.payload for e in sl.events),
                         fmt.encode(self.member.users_payload())])

    def _start(self, opening: bytes) -> None:
        """Headers, then the opening; from here on the hub's batches may come (no await since attach)."""
        self.set_header("Content-Type", self.stream_format.content_type)
        self.set_header("X-Accel-Buffering", "no")  # nginx: pass each item on at once, whatever its config
        self.flush()  # the headers alone, through Tornado, which chooses the body's framing
        stream = compat.response_stream(self.request)
        if stream is None:  # gone already
            self.on_connection_close()
            return
        stream.set_nodelay(True)  # an item is small and should leave now, not wait for an ACK (Nagle)
        self._chunked = compat.response_is_chunked(self.request)
        self._writer = DirectWriter(stream, self.config.max_backlog_bytes)
        self._beat = heartbeat_bytes(self.stream_format, self._chunked)
        self.config.heartbeat.add(self)
        self._write(frame(opening, self._chunked))

    def on_connection_close(self) -> None:
        self._gone = True
        self.config.heartbeat.discard(self)
        if self.member is not None:
            self.member.close()
        if not self._ended.done():
            self._ended.set_result(None)

    def on_finish(self) -> None:
        writer = self._writer
        if writer is None or writer.stream.closed():
            return
        stream = writer.stream
        if not self._chunked:  # HTTP/1.0: the body ends where the connection does
            stream.write(b"").add_done_callback(lambda _done: stream.close())
        if writer.backlog():  # a reader that stopped reading still gets its last item, for a while
            IOLoop.current().call_later(STREAM_DRAIN_TIMEOUT_S, _close_if_backlogged, stream)

    # -- rooms.ports.Listener -----------------------------------------------------------

    def send_batch(self, batch: Batch, own: list[Payload] | None) -> None:
        self._write(batch_bytes(batch, self.stream_format, self._chunked))
        if own:  # a stream posts nothing, so nothing is ever queued for it alone
            self.send_own(own)

    def send_own(self, payloads: list[Payload]) -> None:
        self._write(frame(self.stream_format.items(payloads), self._chunked))

    def end(self, why: Ending) -> None:
        if self.member is not None:
            self.member.close()
        if self._ended.done():
            return
        self.config.heartbeat.discard(self)
        if self._writer is not None:  # past the backlog limit too: the reader learns why when it gets there
            self._writer.write(end_bytes(self.stream_format, why, self._chunked))
        self._ended.set_result(why)

    # -- writing ------------------------------------------------------------------

    def heartbeat(self) -> None:
        self._write(self._beat)

    def _write(self, data: bytes) -> None:
        if self._writer is None or self._ended.done():
            return
        if not self._writer.write(data):
            self.hub.metrics.slow_reader_closed(self.transport)
            log.info("ending slow stream reader %s in %s", self.session.name, self.room)
            self.end(Ending.SLOW)


def _close_if_backlogged(stream: IOStream) -> None:
    if compat.stream_backlog(stream):
        stream.close()
