"""Typed errors of the room core.

Each carries a stable ``code`` (the same string in HTTP bodies and WebSocket error
frames), the HTTP ``status`` it maps to, and a human ``detail``.  The core raises
them; exactly one place per transport turns them into bytes on the wire
(``handlers.base.BaseHandler.write_error`` and ``handlers.ws.error_frame``).

A validation error also says what was wrong in ``reason`` (``empty``, ``too_long`` with its
``limit``, ``control``, ``invisible``, ``slash``, ``dots``, ``type``), which stays off the wire:
pages word the error for a person from the code and the reason (``handlers/messages.py``), while
``detail`` stays the developer's sentence.
"""

from __future__ import annotations


class ChatError(Exception):
    code = "bad_request"
    status = 400

    def __init__(self, detail: str = "", *, reason: str = "", limit: int | None = None, **extra: object) -> None:
        super().__init__(detail or self.code)
        self.detail = detail or self.code
        self.reason = reason  # what was wrong, for a page's wording (not sent)
        self.limit = limit  # the limit a too_long value broke
        self.extra = extra  # extra JSON fields, e.g. retry_after

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "detail": self.detail}
        body.update(self.extra)
        return body


class BadRequest(ChatError):
    code = "bad_request"


class InvalidName(ChatError):
    code = "invalid_name"


class InvalidRoom(ChatError):
    code = "invalid_room"


class InvalidText(ChatError):
    code = "invalid_text"


class InvalidCursor(ChatError):
    code = "invalid_cursor"


class InvalidJSON(ChatError):
    code = "invalid_json"


class UnknownType(ChatError):
    code = "unknown_type"


class InvalidClientId(ChatError):
    code = "invalid_client_id"


class Unauthorized(ChatError):
    code = "unauthorized"
    status = 401


class Forbidden(ChatError):
    code = "forbidden"
    status = 403


class Left(ChatError):
    """The session left the room (here or in another tab) while this request waited in it."""

    code = "left"
    status = 410

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or "you left this room (here or in another tab or window); join again to come back")


class NotFound(ChatError):
    code = "not_found"
    status = 404


class NoSuchRoom(ChatError):
    code = "no_such_room"
    status = 404


class NameTaken(ChatError):
    code = "name_taken"
    status = 409


class PayloadTooLarge(ChatError):
    code = "payload_too_large"
    status = 413


class RateLimited(ChatError):
    code = "rate_limited"
    status = 429

    def __init__(self, retry_after_s: float) -> None:
        # Whole seconds, at least 1: that is what Retry-After can carry.
        seconds = max(1, int(retry_after_s + 0.999))
        super().__init__(f"too many messages; try again in {seconds} s", retry_after=seconds)
        self.retry_after = seconds


class Unavailable(ChatError):
    code = "unavailable"
    status = 503


class NotReady(ChatError):
    """``/readyz``: this process should get no new traffic now (shutting down, store down)."""

    code = "not_ready"
    status = 503


class OutcomeUnknown(Unavailable):
    """A write was sent but its answer never came: it may or may not be stored.  A retry with
    the same client_id finds out (and stores nothing twice); never claim either outcome."""

    code = "outcome_unknown"
    status = 503


class StoreError(Unavailable):
    """A write could not be made durable: the sender gets an error, never an ack."""

    code = "store_error"
    status = 503


class MethodNotAllowed(ChatError):
    code = "method_not_allowed"
    status = 405


class InternalError(ChatError):
    code = "internal_error"
    status = 500


# HTTP statuses Tornado answers by itself (routing, methods, body size, cross-origin checks),
# in the same vocabulary so every error body looks alike.
_BY_STATUS: dict[int, type[ChatError]] = {cls.status: cls for cls in (
    BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, PayloadTooLarge, Unavailable)}
HTTP_STATUS_CODES: dict[int, str] = {status: cls.code for status, cls in _BY_STATUS.items()}


def for_status(status: int) -> ChatError:
    """A ChatError for an HTTP status Tornado chose, keeping that status."""
    cls = _BY_STATUS.get(status) or (InternalError if status >= 500 else BadRequest)
    error = cls()
    error.status = status
    return error
