"""WebSocket close codes, frames, stream endings and the payloads of replies: the one place each is spelled.

Broadcast frames are built once per payload (:func:`cached_frame`, cached in
``Payload.wire``) and once per batch (:func:`batch_frames`), so a room of thousands
costs one encode per event.
"""

from __future__ import annotations

import struct
from typing import Any

from rooms import Ending, errors
from rooms.models import Batch, Payload, dumps

CLOSE_NORMAL = 1000  # the session left the room (here or in another tab): do not reconnect
CLOSE_GOING_AWAY = 1001  # the server is restarting: reconnect and resume from the cursor
CLOSE_PROTOCOL_ERROR = 1002  # the client broke RFC 6455 (an unmasked frame, RSV bits, a bad opcode or close code)
CLOSE_INVALID_PAYLOAD = 1007  # a text message or close reason that is not UTF-8
CLOSE_MESSAGE_TOO_BIG = 1009  # a message over the frame limit (handlers.ws.WS_MAX_FRAME_BYTES)
CLOSE_INTERNAL_ERROR = 1011
CLOSE_SERVICE_RESTART = 1012  # the room's history changed: resume from the cursor (truncated)
CLOSE_TRY_AGAIN_LATER = 1013  # too slow, or the store is unreachable: resume later
CLOSE_NAME_TAKEN = 4409  # the name is in use in the room by another session: do not retry

ENDING_CLOSE_CODES: dict[Ending, int] = {
    Ending.LEFT: CLOSE_NORMAL,
    Ending.SHUTDOWN: CLOSE_GOING_AWAY,
    Ending.HISTORY_RESET: CLOSE_SERVICE_RESTART,
    Ending.SLOW: CLOSE_TRY_AGAIN_LATER,
}


# An event stream has no close code: its last item says why it ended, and whether to come back.
ENDING_REASONS: dict[Ending, tuple[str, str, bool]] = {  # Ending -> (reason, detail, reconnect)
    Ending.LEFT: ("left", "you left the room", False),
    Ending.SHUTDOWN: ("restarting", "the server is restarting; reconnect and resume from your cursor", True),
    Ending.HISTORY_RESET: ("history_reset", Ending.HISTORY_RESET.value, True),
    Ending.SLOW: ("slow", Ending.SLOW.value, True),
}

# What a peer may put in its close frame (RFC 6455 section 7.4; 1012-1014 registered with IANA since):
# never 1004-1006 or 1015 (reserved, or meant for reports, not frames), nothing below 1000 or from
# 5000 on, and nothing in 1016-2999 (for future RFCs).  3000-3999 are registered, 4000-4999 private.
PEER_CLOSE_CODES = frozenset([1000, 1001, 1002, 1003, *range(1007, 1015), *range(3000, 5000)])


def refusal_close_code(exc: errors.ChatError) -> int:
    """How a connection refused by ``exc`` is closed: never retry a taken name, else later."""
    return CLOSE_NAME_TAKEN if isinstance(exc, errors.NameTaken) else CLOSE_TRY_AGAIN_LATER


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


def error_payload(exc: errors.ChatError, **extra: Any) -> Payload:
    """The one place core errors become WebSocket error frames."""
    return Payload(dumps({"type": "error", **exc.as_dict(), **extra}))


def ack_payload(client_id: str, event_id: int) -> Payload:
    return Payload(dumps({"type": "ack", "client_id": client_id, "id": event_id}))


def hello_payload(epoch: str, truncated: bool, cursor: int, user: str) -> Payload:
    return Payload(dumps({"type": "hello", "epoch": epoch, "truncated": truncated, "cursor": cursor,
                          "user": user}))


def end_payload(why: Ending) -> Payload:
    """A stream's last item: ``{"type": "end", "reason", "detail", "reconnect"}``."""
    reason, detail, reconnect = ENDING_REASONS[why]
    return Payload(dumps({"type": "end", "reason": reason, "detail": detail, "reconnect": reconnect}))
