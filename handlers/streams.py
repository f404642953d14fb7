"""The two event-stream formats and their bytes, built once per payload and once per batch.

``GET /rooms/<room>/events`` sends the items a WebSocket gets (hello, the replay,
presence, live events, typing) plus a last item when it ends, in one of two formats:

* Server-Sent Events (``Accept: text/event-stream``): a room event is ``id: <its id>``
  and ``data: <its JSON>`` then a blank line; every other item is a ``data:`` line alone.
  The ``type`` stays inside the JSON, so ``EventSource.onmessage`` sees every item, and
  the browser's ``Last-Event-ID`` is always the id of the last event it got.  The first
  item carries ``retry:`` (the browser's reconnect delay); heartbeats are ``: ping`` comments.
* ndjson (``Accept: application/x-ndjson``, ``?format=ndjson``, or any other Accept): one
  JSON object per line; heartbeats are ``{"type":"ping"}`` lines.

A batch's bytes are cached in ``Batch.wire`` per format and framing (Tornado sends an
HTTP/1.1 answer in chunks, an HTTP/1.0 one as it is), and an item's in ``Payload.wire``,
so every reader of a room is handed the same bytes object.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rooms import Ending, errors
from rooms.models import Batch, Payload
from rooms.validation import parse_cursor

from .frames import end_payload

SSE_RETRY_MS = 2000  # the browser's reconnect delay after a stream breaks or ends (SSE "retry:")
NDJSON_PING = b'{"type":"ping"}\n'


def _sse_item(payload: Payload) -> bytes:
    if payload.event_id:
        return b"id: %d\ndata: %b\n\n" % (payload.event_id, payload.json)
    return b"data: %b\n\n" % payload.json  # JSON from orjson never holds a raw newline: one data line


def _ndjson_item(payload: Payload) -> bytes:
    return payload.json + b"\n"


@dataclass(frozen=True)
class StreamFormat:
    name: str  # "sse" or "ndjson": also its key in Payload.wire and Batch.wire
    content_type: str
    encode: Callable[[Payload], bytes]
    heartbeat: bytes  # one keep-alive line
    preamble: bytes = b""  # before the first item

    def item(self, payload: Payload) -> bytes:
        """``payload`` as one item, built once per payload and format."""
        data = payload.wire.get(self.name)
        if data is None:
            data = payload.wire[self.name] = self.encode(payload)
        return data

    def items(self, payloads: Iterable[Payload]) -> bytes:
        return b"".join([self.item(p) for p in payloads])


SSE = StreamFormat("sse", "text/event-stream; charset=utf-8", _sse_item, b": ping\n",
                   b"retry: %d\n" % SSE_RETRY_MS)
NDJSON = StreamFormat("ndjson", "application/x-ndjson; charset=utf-8", _ndjson_item, NDJSON_PING)
FORMATS: dict[str, StreamFormat] = {f.name: f for f in (SSE, NDJSON)}


def choose_format(query: str | None, accept: str) -> StreamFormat:
    """``?format=`` wins; else SSE if the client accepts it (EventSource does), else ndjson (curl)."""
    if query:
        fmt = FORMATS.get(query)
        if fmt is None:
            raise errors.BadRequest("format must be sse or ndjson")
        return fmt
    return SSE if "text/event-stream" in accept.lower() else NDJSON


def resume_cursor(after: str | None, last_event_id: str | None) -> int | None:
    """Where the stream resumes: ``Last-Event-ID`` if sent, else ``after``.

    The header wins even over an ``after`` in the URL: an EventSource reconnects to the
    URL it was opened with, and the header is the last id it got since.
    """
    cursor = parse_cursor(after)
    if last_event_id is not None and last_event_id.strip():
        try:
            return parse_cursor(last_event_id.strip())
        except errors.InvalidCursor:
            raise errors.InvalidCursor("Last-Event-ID must be an event id (a non-negative integer)") from None
    return cursor


def frame(data: bytes, chunked: bool) -> bytes:
    """``data`` as one HTTP/1.1 chunk (nothing for no data: an empty chunk ends the body)."""
    if not chunked:
        return data
    return b"%x\r\n%b\r\n" % (len(data), data) if data else b""


def batch_bytes(batch: Batch, fmt: StreamFormat, chunked: bool) -> bytes:
    """A room's batch for every reader of one format and framing, built for the first of them."""
    key = fmt.name + "+chunked" if chunked else fmt.name
    data = batch.wire.get(key)
    if data is None:
        data = batch.wire[key] = frame(fmt.items(batch.payloads), chunked)
    return data


@functools.cache
def heartbeat_bytes(fmt: StreamFormat, chunked: bool) -> bytes:
    return frame(fmt.heartbeat, chunked)


@functools.cache
def end_bytes(fmt: StreamFormat, why: Ending, chunked: bool) -> bytes:
    """The last item of a stream ended for ``why``."""
    return frame(fmt.encode(end_payload(why)), chunked)
