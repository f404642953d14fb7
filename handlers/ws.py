"""The room WebSocket: replay after a cursor, then live events and presence.

Broadcast frames are built once per payload (:func:`text_frame`, cached in
``Payload.wire``) and written straight to the connection's stream, so a room of
thousands costs one encode per event.  A reader whose unsent backlog passes
``max_backlog_bytes`` is closed with 1013 and resumes later from its cursor.
"""

from __future__ import annotations

import logging
import struct
from typing import Any
from urllib.parse import urlsplit

import tornado.websocket

from rooms import errors
from rooms.events import Batch, Payload, dumps, loads
from rooms.presence import Connection
from rooms.validation import parse_cursor

from .base import SessionMixin
from .wire import DirectWriter

log = logging.getLogger("obrolan.ws")

WS_MAX_FRAME_BYTES = 64 * 1024  # larger client frames are closed with 1009 by Tornado
CLOSE_TRY_AGAIN_LATER = 1013


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


def error_frame(exc: errors.ChatError, **extra: Any) -> bytes:
    """The one place core errors become WebSocket frames."""
    body: dict[str, Any] = {"type": "error", **exc.as_dict(), **extra}
    return dumps(body)


class RoomSocket(SessionMixin, tornado.websocket.WebSocketHandler):
    conn: Connection | None = None
    _writer: DirectWriter | None = None

    async def get(self, room: str) -> None:  # type: ignore[override]
        # Everything that can refuse the handshake happens here, as a JSON HTTP error
        # (Tornado's own refusals in super().get() answer in plain text).
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.BadRequest("this is a WebSocket endpoint: connect with Upgrade: websocket")
        refused = self._check_cross_origin(self.check_origin)  # the same check super().get() makes
        if refused is not None:
            raise errors.Forbidden(refused)
        self.room = self.path_room(room)
        self.session = self.require_session()
        self.after = parse_cursor(self.raw_query("after"))
        self.epoch = self.raw_query("epoch") or None
        self.hub.check_name(self.room, self.session)
        await super().get(room)

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
        try:
            self.conn = await self.hub.connect(self.room, self.session, listener=self)
        except errors.ChatError as exc:  # the name was taken since the handshake
            self._send(error_frame(exc))
            self.close(4409, exc.code)
            return
        if self.ws_connection is None:  # closed while we joined
            self.hub.disconnect(self.conn)
            return
        sl = await self.hub.attach(self.conn, self.after, self.epoch)
        if sl is None:
            return
        self._send(dumps({"type": "hello", "epoch": sl.epoch, "truncated": sl.truncated,
                          "cursor": sl.cursor, "user": self.session.name}))
        for event in sl.events:
            self._send_frame(cached_frame(event.payload))
        room = self.hub.loaded(self.room)
        if room is not None:
            self._send_frame(cached_frame(self.hub.presence_payload(room)))

    async def on_message(self, message: str | bytes) -> None:
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
                if client_id is not None:
                    self._send(dumps({"type": "ack", "client_id": client_id, "id": event.id}))
            elif kind == "typing":
                self.hub.typing(self.room, self.session)
            else:
                raise errors.UnknownType(f"unknown frame type {kind!r}")
        except errors.ChatError as exc:
            extra = {"client_id": client_id} if isinstance(client_id, str) else {}
            self._send(error_frame(exc, **extra))

    def on_close(self) -> None:
        if self.conn is not None:
            self.hub.disconnect(self.conn)

    # -- Listener -----------------------------------------------------------------

    def send_payload(self, payload: Payload) -> None:
        self._send_frame(cached_frame(payload))

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
