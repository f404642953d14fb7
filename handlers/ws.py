"""The room WebSocket: replay after a cursor, then live events and presence.

The socket is a member of the room for exactly as long as Tornado's ``get`` runs
(the handshake, then the frame loop): ``async with hub.join(...)`` pairs the two.
Broadcasts arrive as batches (:meth:`RoomSocket.send_batch`) written through a
:class:`~handlers.wire.FrameWriter`; a reader whose unsent backlog passes
``max_backlog_bytes`` is ended: its backlog is cut at a frame boundary and the close
frame (1013) follows what was already on its way, so it resumes later from its cursor.
Frames that break RFC 6455 close the connection with 1002 or 1007
(:class:`~handlers.compat.StrictProtocol13`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rooms import Ending, errors
from rooms.members import Membership
from rooms.models import Batch, Payload, loads
from rooms.validation import parse_cursor

from . import compat, frames
from .base import SessionMixin, origin_allowed
from .wire import FrameWriter

log = logging.getLogger("obrolan.ws")

WS_MAX_FRAME_BYTES = 64 * 1024  # a larger client message closes the socket with 1009 (compat.StrictProtocol13)
WS_MAX_FRAMES_IN_FLIGHT = 64  # frames of one socket being handled at once (bounds a flood's tasks)
SLOW_CLOSE_DRAIN_S = 30.0  # with pings off: how long a slow reader's close frame may take to leave


async def _after(previous: asyncio.Future[None] | None) -> None:
    """Wait until the previous frame of the same socket has been handled (never raises)."""
    if previous is not None and not previous.done():
        await asyncio.wait([previous])


class RoomSocket(SessionMixin, compat.StrictWebSocketHandler):
    transport = "websocket"  # rooms.ports.Listener, for metrics
    member: Membership | None = None
    left_room = False  # the session left this room with Leave in another tab: opened only to close
    _frames_in_flight = 0
    _last_frame: asyncio.Future[None] | None = None
    _writer: FrameWriter | None = None

    async def prepare(self) -> None:
        # Everything that can refuse the handshake happens before it, as a JSON HTTP error
        # (Tornado's own refusals in super().get() answer in plain text).
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.BadRequest("this is a WebSocket endpoint: connect with Upgrade: websocket")
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.check_origin(origin):  # the check super().get() makes
            raise errors.Forbidden("cross-origin WebSocket refused: this origin is not allowed")
        self.room = self.path_room(self.path_args[0])
        self.session = self.require_session()
        self.after = parse_cursor(self.raw_query("after"))
        self.epoch = self.raw_query("epoch") or None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        # Joining may refuse (the name is taken: 409; the store is unreachable: 503) before the
        # handshake; then the socket is present until super().get()'s frame loop ends.
        if self.has_left(self.room, self.session):  # in another tab: open, then closed as when it happens
            self.left_room = True
            await super().get(*args, **kwargs)
            return
        async with self.hub.join(self.room, self.session, self) as self.member:
            await super().get(*args, **kwargs)

    @property
    def close_drain_timeout_s(self) -> float:
        """A slow reader reads late: its close frame may take up to the ping timeout to leave (it
        is not pinged once closed), or :data:`SLOW_CLOSE_DRAIN_S` with pings off."""
        interval = self.config.pinger.interval_s
        return interval if interval > 0 else SLOW_CLOSE_DRAIN_S

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(origin, self.request.host, self.config.allowed_origins)

    async def open(self, *args: str) -> None:
        if self.left_room:
            self.close(frames.ENDING_CLOSE_CODES[Ending.LEFT], Ending.LEFT.value)
            return
        self.set_nodelay(True)  # a chat frame is small and should leave now, not wait for an ACK (Nagle)
        stream = compat.websocket_stream(self)
        assert stream is not None and self.member is not None
        self._writer = FrameWriter(stream, self.config.max_backlog_bytes)
        self.config.pinger.add(self)
        try:
            sl = await self.member.attach(self.after, self.epoch)
        except errors.ChatError as exc:  # e.g. the shared store is unreachable: try again later
            self.hub.metrics.error(exc.code)
            self._write(frames.text_frame(frames.error_payload(exc).json))
            self.member.close()
            self.close(frames.refusal_close_code(exc), exc.code)
            return
        if sl is None:
            return
        opening = [frames.cached_frame(frames.hello_payload(sl.epoch, sl.truncated, sl.cursor, self.session.name))]
        opening.extend(frames.cached_frame(event.payload) for event in sl.events)
        opening.append(frames.cached_frame(self.member.users_payload()))
        self._write(b"".join(opening))  # the whole opening in one write
        compat.drop_handshake_state(self)
        # The template helpers: Tornado drops them itself only at close.
        self.ui = None  # type: ignore[assignment]  # typed ObjectDict; Tornado's close sets None the same way

    def on_message(self, message: str | bytes) -> asyncio.Future[None] | None:
        # Each frame gets a task of its own, started in arrival order, and Tornado reads the next
        # frame at once: a burst from one client is posted in one loop iteration and goes out to
        # each member in one write.  Posts are taken in arrival order (ids, rate limit); replies
        # (ack, error) wait for the previous frame's, so the client sees them in order too.  With
        # WS_MAX_FRAMES_IN_FLIGHT frames unfinished, Tornado waits before reading on.
        task = asyncio.ensure_future(self._handle_frame(message, self._last_frame))
        self._last_frame = task
        self._frames_in_flight += 1
        task.add_done_callback(self._frame_done)
        return task if self._frames_in_flight >= WS_MAX_FRAMES_IN_FLIGHT else None

    def _frame_done(self, _task: asyncio.Future[None]) -> None:
        self._frames_in_flight -= 1

    async def _handle_frame(self, message: str | bytes, previous: asyncio.Future[None] | None) -> None:
        member = self.member
        assert member is not None
        client_id = None
        try:
            try:
                frame = loads(message)
            except ValueError:
                raise errors.InvalidJSON("a frame must be one JSON object") from None
            if not isinstance(frame, dict):
                raise errors.InvalidJSON("a frame must be one JSON object")
            kind = frame.get("type")
            if kind == "message":
                client_id = frame.get("client_id")
                event = await member.post(frame.get("text"), client_id)
                await _after(previous)
                if client_id is not None:
                    member.reply(frames.ack_payload(client_id, event.id))
            elif kind == "typing":
                await _after(previous)
                member.typing()
            elif kind == "users":  # the full user list, on request
                await _after(previous)
                member.reply(member.users_payload())
            else:
                raise errors.UnknownType(f"unknown frame type {kind!r}")
        except errors.ChatError as exc:
            await _after(previous)
            extra = {"client_id": client_id} if isinstance(client_id, str) else {}
            self.hub.metrics.error(exc.code)
            member.reply(frames.error_payload(exc, **extra))
        except Exception:  # a bug: do what Tornado does when on_message fails
            log.exception("frame from %s in %s failed", self.session.name, self.room)
            self.close(frames.CLOSE_INTERNAL_ERROR, "internal error")

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        # Whoever closes (the hub, the pinger, a bug), the member goes now: the socket alone may
        # stay a while, until its close frame has left (compat.StrictProtocol13).
        if self.member is not None:
            self.member.close()
        super().close(code, reason)

    def on_close(self) -> None:
        self.config.pinger.discard(self)
        if self.member is not None:
            self.member.close()

    def on_pong(self, data: bytes) -> None:
        self.config.pinger.pong(self)

    # -- rooms.ports.Listener -----------------------------------------------------------

    def send_batch(self, batch: Batch, own: list[Payload] | None) -> None:
        data = frames.batch_frames(batch)
        if own:  # our own replies queued behind this batch: in the same write
            data += b"".join([frames.text_frame(p.json) for p in own])
        self._write(data)

    def send_own(self, payloads: list[Payload]) -> None:
        self._write(b"".join([frames.text_frame(p.json) for p in payloads]))

    def end(self, why: Ending) -> None:
        if why is Ending.SLOW and self._writer is not None:
            # What has not started on its way is dropped, whole frames all: the close frame
            # follows the one chunk already going, and the reader resumes from its cursor.
            self._writer.cut()
        self.close(frames.ENDING_CLOSE_CODES[why], why.value)

    # -- writing ------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        ws = self.ws_connection
        if ws is None or ws.is_closing() or self._writer is None:
            return
        if not self._writer.write(data):
            self.hub.metrics.slow_reader_closed(self.transport)
            log.info("closing slow reader %s in %s", self.session.name, self.room)
            self.end(Ending.SLOW)
