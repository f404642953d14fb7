"""The Redis history store: one room's sequence shared by every process (``--redis-url``).

Each room is a Redis Stream whose entry ids *are* the event ids (``N-0``), next to a
small hash with the room's epoch and newest id.  One Lua script, atomic on the Redis
server, does all of an append: de-duplicate by ``(session, client_id)``, allocate the
id (``HINCRBY``), ``XADD`` the event, trim by the retention options, and ``PUBLISH``
the encoded event to the room's channel.  So every process sees every room's events
in id order, and a process that missed some reads them back with ``XRANGE``.

The epoch lives in Redis too: the same on every process and across process restarts.
It changes only if Redis lost the room (a restart without persistence, a flush): the
next open or append finds no epoch and starts the room over under a new one.

Keys (``<room>`` last, so no room name can make two keys collide):
``obrolan:meta:<room>`` hash (epoch, last_id, last_ts), ``obrolan:events:<room>``
stream (fields ``j`` = the event's JSON, ``t`` = its ``ts`` in ms, for age retention),
``obrolan:rooms`` sorted set of rooms by last activity, ``obrolan:cid:<json [room, session, client_id]>``
the first event of a retried send (expires after :data:`DEDUPE_TTL_S`).
Channel ``obrolan:room:<room>`` carries ``E<epoch> <event JSON>`` and the presence and
typing notices of :mod:`rooms.redis_presence` and :mod:`rooms.broker`.

redis is imported only when ``--redis-url`` is given (:func:`redis_backend`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable
from datetime import datetime
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .errors import ChatError, StoreError, Unavailable
from .events import Draft, Event, dumps, loads
from .store import LIST_ROOMS_MAX, Retention, RoomInfo, RoomState, Store, new_epoch

log = logging.getLogger("obrolan.redis")

T = TypeVar("T")

KEY_PREFIX = "obrolan:"
COMMAND_TIMEOUT_S = 2.0  # a command that takes longer: Redis is unreachable for us
CONNECT_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 32  # commands in flight at once per process; more wait for a free connection
DEDUPE_TTL_S = 24 * 3600  # how long a retried send (same session, client_id) finds its first event
CATCH_UP_BATCH = 1000  # events per XRANGE when filling a gap
RETENTION_SWEEP_INTERVAL_S = 60.0  # age trimming of rooms nobody writes to
AGE_TRIM_SCAN = 64  # stream entries an append looks at for age trimming (amortised: > 1 per append)

UNREACHABLE = "the shared store (Redis) is unreachable; nothing was stored, try again shortly"

_LUA_NOW = """
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Remove what the retention no longer keeps; at most ``passes`` scans for age.
_LUA_TRIM = """
local function trim(stream, max_events, max_age_ms, now_ms, passes)
  local removed = 0
  if max_events > 0 then removed = redis.call('XTRIM', stream, 'MAXLEN', max_events) end
  if max_age_ms <= 0 then return removed end
  for _ = 1, passes do
    local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', AGE_TRIM_SCAN)
    local cut = nil
    for _, e in ipairs(head) do
      if tonumber(e[2][4]) >= now_ms - max_age_ms then break end
      cut = tonumber(string.match(e[1], '^(%d+)'))
    end
    if not cut then break end
    removed = removed + redis.call('XTRIM', stream, 'MINID', cut + 1)
  end
  return removed
end
""".replace("AGE_TRIM_SCAN", str(AGE_TRIM_SCAN))

# A room with no epoch (new, or lost by Redis) starts over: a new epoch, ids from 1.
_LUA_ENSURE = """
local function ensure(meta, stream, candidate)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then return epoch end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'last_id', 0)
  return candidate
end
"""

# KEYS: meta, stream, dedupe key, rooms.  ARGV: epoch candidate, event JSON after the id,
# channel, room, max events, max age ms, dedupe ttl s (0: no client_id), ts, ts in ms.
APPEND_LUA = _LUA_NOW + _LUA_TRIM + _LUA_ENSURE + """
local meta, stream, dkey, rooms = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dedupe_s = tonumber(ARGV[7])
if dedupe_s > 0 then
  local seen = redis.call('GET', dkey)
  if seen then return {0, seen} end
end
local epoch = ensure(meta, stream, ARGV[1])
local id = redis.call('HINCRBY', meta, 'last_id', 1)
local json = '{"id":' .. id .. ARGV[2]
redis.call('XADD', stream, id .. '-0', 'j', json, 't', ARGV[9])
redis.call('HSET', meta, 'last_ts', ARGV[8])
redis.call('ZADD', rooms, ARGV[9], ARGV[4])
if dedupe_s > 0 then redis.call('SET', dkey, json, 'EX', dedupe_s) end
trim(stream, tonumber(ARGV[5]), tonumber(ARGV[6]), now_ms, 1)
redis.call('PUBLISH', ARGV[3], 'E' .. epoch .. ' ' .. json)
return {id, epoch}
"""

# KEYS: meta, stream.  ARGV: epoch candidate, how many recent events.
OPEN_LUA = _LUA_ENSURE + """
local epoch = ensure(KEYS[1], KEYS[2], ARGV[1])
local recent = {}
if tonumber(ARGV[2]) > 0 then recent = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2]) end
return {epoch, redis.call('HGET', KEYS[1], 'last_id'), recent}
"""

# KEYS: meta, stream.  ARGV: first id wanted, count.  The epoch and the events, read together.
SINCE_LUA = """
return {redis.call('HGET', KEYS[1], 'epoch') or '', redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2])}
"""

# KEYS: stream.  ARGV: max events, max age ms.
TRIM_LUA = _LUA_NOW + _LUA_TRIM + """
return trim(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now_ms, 1000000)
"""


def key(kind: str, room: str) -> str:
    return f"{KEY_PREFIX}{kind}:{room}"


def channel(room: str) -> str:
    return key("room", room)


ROOMS_KEY = KEY_PREFIX + "rooms"


def ts_ms(ts: str) -> int:
    """``YYYY-MM-DDTHH:MM:SS.sssZ`` as milliseconds since the epoch."""
    return int(datetime.fromisoformat(ts).timestamp() * 1000)


def event_from_json(data: bytes) -> Event:
    d = loads(data)
    return Event(d["id"], d["type"], d["room"], d["user"], d["ts"], d.get("text"))


def events_from_entries(entries: list[Any]) -> list[Event]:
    """Stream entries to events: ``[id, [b"j", json, b"t", ms]]`` as a script returns them,
    or ``(id, {b"j": json, ...})`` as redis-py parses XRANGE."""
    return [event_from_json(fields[b"j"] if isinstance(fields, dict) else fields[1]) for _id, fields in entries]


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
            max_connections=MAX_CONNECTIONS, timeout=COMMAND_TIMEOUT_S)
        return aioredis.Redis.from_pool(pool)

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
        """Drop pooled connections (after Redis went away they are dead; new ones are made on use)."""
        if self.client is not None:
            await self.client.connection_pool.disconnect()

    async def call(self, op: Awaitable[T]) -> T:
        """Await a Redis operation; turn its failures into the core's errors."""
        try:
            return await op
        except ChatError:
            raise
        except Exception as exc:
            if is_unreachable(exc):
                raise Unavailable(UNREACHABLE) from exc
            if isinstance(exc, rexc.RedisError):
                raise StoreError(f"the shared store refused the write: {exc}") from exc
            raise


class RedisStore(Store):
    """History, ids and exactly-once keys in Redis; see the module docstring."""

    durable = True

    def __init__(self, link: RedisLink, retention: Retention | None = None) -> None:
        self.link = link
        self.retention = retention or Retention()
        self._scripts: dict[str, Any] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.link.start()
        r = self.link.redis
        for name, src in (("append", APPEND_LUA), ("open", OPEN_LUA), ("since", SINCE_LUA), ("trim", TRIM_LUA)):
            self._scripts[name] = r.register_script(src)
        if self.retention.max_events or self.retention.max_age_s:
            try:
                await self.trim()  # the retention may be tighter than when the events were stored
            except ChatError as exc:
                log.warning("retention not applied at start: %s", exc.detail)
        if self.retention.max_age_s > 0:
            self._sweeper = asyncio.ensure_future(self._sweep_loop())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.link.close()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(RETENTION_SWEEP_INTERVAL_S)
            try:
                await self.trim()
            except ChatError as exc:
                log.info("retention sweep skipped: %s", exc.detail)

    async def open_room(self, room: str, recent_max: int) -> RoomState:
        epoch, last_id, recent = await self.link.call(self._scripts["open"](
            keys=[key("meta", room), key("events", room)], args=[new_epoch(), recent_max]))
        events = events_from_entries(recent)
        events.reverse()
        return RoomState(epoch.decode(), int(last_id or 0), events)

    async def append(self, draft: Draft) -> tuple[Event, bool]:
        dedupe = bool(draft.client_id and draft.session)
        dkey = KEY_PREFIX + "cid:" + dumps([draft.room, draft.session, draft.client_id]).decode() if dedupe else ""
        rest = draft.with_id(0).json[len(b'{"id":0'):]
        ret = self.retention
        first, second = await self.link.call(self._scripts["append"](
            keys=[key("meta", draft.room), key("events", draft.room), dkey or key("nocid", draft.room), ROOMS_KEY],
            args=[new_epoch(), rest, channel(draft.room), draft.room, ret.max_events,
                  int(ret.max_age_s * 1000), DEDUPE_TTL_S if dedupe else 0, draft.ts, ts_ms(draft.ts)]))
        if first == 0:  # a retry: the first event again
            seen = event_from_json(second)
            return Event(seen.id, seen.type, seen.room, seen.user, seen.ts, seen.text,
                         draft.session, draft.client_id), False
        return draft.with_id(int(first)), True

    async def read_after(self, room: str, after_id: int, limit: int) -> list[Event] | None:
        entries = await self.link.call(self.link.redis.xrange(key("events", room), after_id + 1, "+", count=limit))
        events = events_from_entries(entries)
        if events and events[0].id != after_id + 1:
            return None  # trimmed: not all of them are held
        if not events and after_id < await self._last_id(room):
            return None
        return events

    async def _last_id(self, room: str) -> int:
        return int(await self.link.call(self.link.redis.hget(key("meta", room), "last_id")) or 0)

    async def read_before(self, room: str, before_id: int, limit: int) -> list[Event]:
        if before_id <= 1 or limit <= 0:
            return []
        entries = await self.link.call(self.link.redis.xrevrange(key("events", room), before_id - 1, "-",
                                                                 count=limit))
        events = events_from_entries(entries)
        events.reverse()  # contiguous: retention only ever removes the oldest events
        return events

    async def since(self, room: str, after_id: int, limit: int = CATCH_UP_BATCH) -> tuple[str | None, list[Event]]:
        """The room's epoch (None if Redis lost it) and up to ``limit`` events after ``after_id``."""
        epoch, entries = await self.link.call(self._scripts["since"](
            keys=[key("meta", room), key("events", room)], args=[after_id + 1, limit]))
        return (epoch.decode() or None), events_from_entries(entries)

    async def list_rooms(self) -> list[RoomInfo]:
        r = self.link.redis
        names = [n.decode() for n in await self.link.call(r.zrevrange(ROOMS_KEY, 0, LIST_ROOMS_MAX - 1))]
        if not names:
            return []
        async with r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hmget(key("meta", name), "last_id", "last_ts")
            metas = await self.link.call(pipe.execute())
        return [RoomInfo(name, int(last_id or 0), ts.decode() if ts else None)
                for name, (last_id, ts) in zip(names, metas, strict=True)]

    async def trim(self) -> int:
        ret = self.retention
        if not (ret.max_events or ret.max_age_s):
            return 0
        removed = 0
        for name in await self.link.call(self._all_rooms()):
            removed += int(await self.link.call(self._scripts["trim"](
                keys=[key("events", name.decode())], args=[ret.max_events, int(ret.max_age_s * 1000)])))
        return removed


    async def _all_rooms(self) -> list[bytes]:
        return [name async for name, _score in self.link.redis.zscan_iter(ROOMS_KEY)]


def redis_backend(url: str, *, grace_s: float, expiry_s: float,
                  retention: Retention | None = None) -> tuple[RedisStore, Any, Any]:
    """The store, broker and presence backend of one process on the Redis at ``url``."""
    from .broker import RedisBroker
    from .redis_presence import RedisPresence

    link = RedisLink(url)
    store = RedisStore(link, retention)
    presence = RedisPresence(link, grace_s=grace_s, expiry_s=expiry_s)
    broker = RedisBroker(link, store, presence)
    return store, broker, presence
