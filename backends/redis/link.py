"""What a process shares with Redis: its clients, its id, key names, and error mapping.

redis is imported only when ``--redis-url`` is given (``backends.open_backend``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rooms.errors import ChatError, OutcomeUnknown, StoreError, Unavailable
from rooms.models import Event, loads

log = logging.getLogger("obrolan.redis")

T = TypeVar("T")

KEY_PREFIX = "obrolan:"
COMMAND_TIMEOUT_S = 2.0  # a command that takes longer: Redis is unreachable for us
CONNECT_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 32  # commands in flight at once per process; more wait for a free connection
POOL_WAIT_S = 10.0  # ... at most this long (all of them busy: the process is overloaded)
UNREACHABLE = "the shared store (Redis) is unreachable; try again shortly"
NOT_STORED = "the shared store (Redis) is unreachable; nothing was stored, try again shortly"
OUTCOME_UNKNOWN = ("the shared store (Redis) stopped answering after the message was sent, so it may have "
                   "been stored; send it again with the same client_id (or Idempotency-Key) to find out")


def key(kind: str, room: str) -> str:
    return f"{KEY_PREFIX}{kind}:{room}"


def channel(room: str) -> str:
    return key("room", room)


ROOMS_KEY = KEY_PREFIX + "rooms"


def ts_ms(ts: str) -> int:
    """``YYYY-MM-DDTHH:MM:SS.sssZ`` as milliseconds since the epoch."""
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def event_from_json(data: bytes | str) -> Event:
    d = loads(data)
    return Event(d["id"], d["type"], d["room"], d["user"], d["ts"], d.get("text"))


def events_from_entries(entries: Sequence[Sequence[Any]] | None) -> list[Event]:
    """Stream entries to events: ``[id, [b"j", json, b"t", ms]]`` as a script returns them,
    or ``(id, {b"j": json, ...})`` as redis-py parses XRANGE (whose type allows None: no entries)."""
    return [event_from_json(fields[b"j"] if isinstance(fields, dict) else fields[1])
            for _id, fields in entries or ()]


def never_sent(exc: BaseException) -> bool:
    """A failure that happened before the command left this process: redis-py found no
    connection it could make (a dead pooled one is replaced first), or could not write it."""
    text = str(exc)
    return isinstance(exc, rexc.ConnectionError) and not isinstance(exc, rexc.TimeoutError) and (
        "connecting to" in text or "No connection available" in text or "while writing" in text)


def is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | OSError | asyncio.TimeoutError)


class RedisLink:
    """What a process shares with Redis: the command client, the subscriber client, its id."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.proc = secrets.token_hex(6)  # this process, in presence leases and relayed notices
        self.client: aioredis.Redis | None = None
        self.subscriber: aioredis.Redis | None = None

    def _client(self, socket_timeout: float | None) -> aioredis.Redis:
        # No automatic retries: a script whose reply was lost must not run twice behind our back.
        # RESP2: the replies of streams and pub/sub are plain arrays on every server version.
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, socket_timeout=socket_timeout, socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_keepalive=True, retry=Retry(NoBackoff(), 0), protocol=2,
            max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S)
        return aioredis.Redis.from_pool(pool)

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages and logs."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))

    async def start(self) -> None:
        if self.client is None:
            self.client = self._client(COMMAND_TIMEOUT_S)
            self.subscriber = self._client(None)  # pub/sub blocks on reads as long as it likes

    async def close(self) -> None:
        for client in (self.client, self.subscriber):
            if client is not None:
                await client.aclose()
        self.client = self.subscriber = None

    @property
    def redis(self) -> aioredis.Redis:
        if self.client is None:
            raise Unavailable(UNREACHABLE)
        return self.client

    async def reset_connections(self) -> None:
        """Drop idle pooled connections: if Redis went away they are dead (new ones are made on
        use).  Commands in flight keep theirs: only the subscription may have been cut."""
        if self.client is not None:
            try:
                await self.client.connection_pool.disconnect(inuse_connections=False)
            except Exception as exc:
                log.debug("dropping idle Redis connections: %s", exc)

    async def call(self, op: Awaitable[T], write: bool = False) -> T:
        """Await a Redis operation; turn its failures into the core's errors.

        For a ``write``, say only what is known: a failure before the command left (no
        connection could be made) stored nothing; one after it left (no answer in time, the
        connection dropped while we waited) may have stored it (OutcomeUnknown).
        """
        try:
            return await op
        except ChatError:
            raise
        except Exception as exc:
            if is_unreachable(exc):
                if not write:
                    raise Unavailable(UNREACHABLE) from exc
                if never_sent(exc):
                    raise Unavailable(NOT_STORED) from exc
                raise OutcomeUnknown(OUTCOME_UNKNOWN) from exc
            if isinstance(exc, rexc.RedisError):
                raise StoreError(f"the shared store refused the write: {exc}") from exc
            # The client library in a state it did not expect (e.g. a connection closed under
            # it): the caller gets a clear error, not a 500; the log keeps the details.
            log.warning("Redis call failed unexpectedly", exc_info=True)
            raise Unavailable(UNREACHABLE) from exc
