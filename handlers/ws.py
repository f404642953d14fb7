"""The room WebSocket: replay after a cursor, then live events and presence.

Broadcast frames are built once per payload (:func:`text_frame`, cached in
``Payload.wire``) and written through a :class:`~handlers.wire.DirectWriter`
(the socket first, the stream only for what the kernel did not take), so a room of
thousands costs one encode per event.  A reader whose unsent backlog passes
``max_backlog_bytes`` is closed with 1013 and resumes later from its cursor.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any
from urllib.parse import urlsplit

import tornado.websocket
from tornado import httputil

from rooms import errors
from rooms.events import Batch, Payload, dumps, loads
from rooms.presence import Connection
from rooms.validation import parse_cursor

from .base import SessionMixin
from .wire import DirectWriter

log = logging.getLogger("obrolan.ws")

WS_MAX_FRAME_BYTES = 64 * 1024  # larger client frames are closed with 1009 by Tornado
CLOSE_TRY_AGAIN_LATER = 1013
WS_MAX_FRAMES_IN_FLIGHT = 64  # frames of one socket being handled at once (bounds a flood's tasks)


def text_frame(data: bytes) -> bytes:
    """An unmasked, final, uncompressed RFC 6455 text frame (server to client)."""
    n = len(data)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + data


def cached_frame(payload: Payload) -> bytes:
    frame = payload.wire.get("ws")
    if frame is None:
        frame = payload.wire["ws"] = text_frame(payload.json)
    return frame


def batch_frames(batch: Batch) -> bytes:
    """All the frames of a room's batch, joined once for every member."""
    frames = batch.wire.get("ws")
    if frames is None:
        frames = batch.wire["ws"] = b"".join([cached_frame(p) for p in batch.payloads])
    return frames


async def _after(previous: asyncio.Future[None] | None) -> None:
    """Wait until the previous frame of the same socket has been handled (never raises)."""
    if previous is not None and not previous.done():
        await asyncio.wait([previous])


def error_frame(exc: errors.ChatError, **extra: Any) -> bytes:
    """The one place core errors become WebSocket frames."""
    body: dict[str, Any] = {"type": "error", **exc.as_dict(), **extra}
    return dumps(body)


class RoomSocket(SessionMixin, tornado.websocket.WebSocketHandler):
    conn: Connection | None = None
    _frames_in_flight = 0
    _last_frame: asyncio.Future[None] | None = None
    _writer: DirectWriter | None = None

    async def prepare(self) -> None:
        # In prepare, not an override of get: get's coroutine lives as long as the socket.
        # Everything that can refuse the handshake happens here, as a JSON HTTP error
        # (Tornado's own refusals in super().get() answer in plain text).
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.BadRequest("this is a WebSocket endpoint: connect with Upgrade: websocket")
        refused = self._check_cross_origin(self.check_origin)  # the same check super().get() makes
        if refused is not None:
            raise errors.Forbidden(refused)
        self.room = self.path_room(self.path_args[0])
        self.session = self.require_session()
        self.after = parse_cursor(self.raw_query("after"))
        self.epoch = self.raw_query("epoch") or None
        await self.hub.check_name(self.room, self.session)

    def check_origin(self, origin: str) -> bool:
        if origin.rstrip("/") in self.config.allowed_origins:
            return True
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:  # e.g. "http://[": not an origin we serve
            return False
        return netloc.lower() == self.request.host.lower()

    async def open(self, *args: str) -> None:
        self.set_nodelay(True)  # a chat frame is small and should leave now, not wait for an ACK (Nagle)
        self._writer = DirectWriter(self.ws_connection.stream, self.config.max_backlog_bytes)
        self._held: list[bytes] = []
        self.config.pinger.add(self)
        try:
            self.conn = await self.hub.connect(self.room, self.session, listener=self)
        except errors.ChatError as exc:  # the name was taken since the handshake, or the store is unreachable
            self._refuse(exc)
            return
        if self.ws_connection is None:  # closed while we joined
            self.hub.disconnect(self.conn)
            return
        try:
            sl = await self.hub.attach(self.conn, self.after, self.epoch)
        except errors.ChatError as exc:  # e.g. the shared store is unreachable: try again later
            self._refuse(exc)
            return
        if sl is None:
            return
        frames = [text_frame(dumps({"type": "hello", "epoch": sl.epoch, "truncated": sl.truncated,
                                    "cursor": sl.cursor, "user": self.session.name}))]
        frames.extend(cached_frame(event.payload) for event in sl.events)
        room = self.hub.loaded(self.room)
        if room is not None:
            frames.append(cached_frame(self.hub.presence_payload(room)))
        self._send_frame(b"".join(frames))  # the whole opening in one write
        self._drop_handshake_state()

    def _drop_handshake_state(self) -> None:
        # A socket lives for hours; what only the handshake needed goes: the request's headers
        # and cookies, the 101 answer's headers, the template helpers (Tornado drops those
        # itself at close).  About 2 KiB per member.
        self.request.headers = httputil.HTTPHeaders()
        self.request.__dict__.pop("_cookies", None)
        self._headers = httputil.HTTPHeaders()
        self.ui = None

    def _refuse(self, exc: errors.ChatError) -> None:
        """Say why and close: 4409 (the name is taken: do not retry) or 1013 (retry later)."""
        self._send(error_frame(exc))
        if self.conn is not None:
            self.hub.disconnect(self.conn)
        self.close(4409 if isinstance(exc, errors.NameTaken) else CLOSE_TRY_AGAIN_LATER, exc.code)

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
                event, _ = await self.hub.post(self.room, self.session, frame.get("text"), client_id)
                await _after(previous)
                if client_id is not None:
                    self._send(dumps({"type": "ack", "client_id": client_id, "id": event.id}))
            elif kind == "typing":
                await _after(previous)
                self.hub.typing(self.room, self.session)
            else:
                raise errors.UnknownType(f"unknown frame type {kind!r}")
        except errors.ChatError as exc:
            await _after(previous)
            extra = {"client_id": client_id} if isinstance(client_id, str) else {}
            self._send(error_frame(exc, **extra))
        except Exception:  # a bug: do what Tornado does when on_message fails
            log.exception("frame from %s in %s failed", self.session.name, self.room)
            self.close(1011, "internal error")

    def on_close(self) -> None:
        self.config.pinger.discard(self)
        if self.conn is not None:
            self.hub.disconnect(self.conn)

    def on_pong(self, data: bytes) -> None:
        self.config.pinger.pong(self)

    # -- Listener -----------------------------------------------------------------

    def send_batch(self, batch: Batch) -> None:
        frames = batch_frames(batch)
        if self._held:  # our own frames written while this batch was queued come after it
            frames += b"".join(self._held)
            self._held.clear()
        self._write(frames)

    def close_for(self, code: int, reason: str) -> None:
        if self.conn is not None:
            self.hub.disconnect(self.conn)
        self.close(code, reason)

    # -- writing ------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        self._send_frame(text_frame(data))

    def _send_frame(self, frame: bytes) -> None:
        if self.hub.batch_pending(self.room, self):
            self._held.append(frame)  # sent with that batch, after it (send_batch)
        else:
            self._write(frame)

    def _write(self, data: bytes) -> None:
        ws = self.ws_connection
        if ws is None or ws.is_closing() or self._writer is None:
            return
        if not self._writer.write(data):
            log.info("closing slow reader %s in %s", self.session.name, self.room)
            self.close_for(CLOSE_TRY_AGAIN_LATER, "too slow; resume from your cursor")
