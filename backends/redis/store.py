"""The Redis history store: one room's sequence shared by every process (``--redis-url``).

Each room is a Redis Stream whose entry ids *are* the event ids (``N-0``), next to a
small hash with the room's epoch and newest id.  One Lua script, atomic on the Redis
server, does all of an append: de-duplicate by ``(session, client_id)``, allocate the
id (``HINCRBY``), ``XADD`` the event, trim by the retention options, and ``PUBLISH``
the encoded event to the room's channel.  Appends that arrive while a script call is
on its way go together in the next call (one round trip for many sends, as SQLite's
group commit does).  So every process sees every room's events
in id order, and a process that missed some reads them back with ``XRANGE``.

The epoch lives in Redis too: the same on every process and across process restarts.
It changes only if Redis lost the room (a restart without persistence, a flush): the
next open or append finds no epoch and starts the room over under a new one.

Keys (``<room>`` last, so no room name can make two keys collide):
``obrolan:meta:<room>`` hash (epoch, last_id, last_ts), ``obrolan:events:<room>``
stream (fields ``j`` = the event's JSON, ``t`` = its ``ts`` in ms, for age retention),
``obrolan:rooms`` sorted set of rooms by last activity, ``obrolan:cid:<json [room, session, client_id]>``
the first event of a retried send (expires after :data:`DEDUPE_TTL_S`).
Channel ``obrolan:room:<room>`` carries ``E<epoch> <event JSON>[\\n<event JSON>...]`` and the presence and
typing notices of :mod:`backends.redis.presence` and :mod:`backends.redis.broker`.

"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from rooms.errors import ChatError, Unavailable
from rooms.models import Draft, Event, Retention, RoomInfo, RoomState, dumps, new_epoch
from rooms.ports import LIST_ROOMS_MAX, Store

from .link import (
    KEY_PREFIX,
    ROOMS_KEY,
    RedisLink,
    channel,
    event_from_json,
    events_from_entries,
    key,
    ts_ms,
)

log = logging.getLogger("obrolan.redis")

DEDUPE_TTL_S = 24 * 3600  # how long a retried send (same session, client_id) finds its first event
CATCH_UP_BATCH = 1000  # events per XRANGE when filling a gap
BATCH_MAX_APPENDS = 256  # appends in one script call at most
# One script call of appends at a time: calls on different connections could reach Redis in
# either order, and appends must get their ids in the order they were made (a client's
# messages, pipelined by the WebSocket handler, keep their order).
BATCHES_IN_FLIGHT = 1
START_PING_TRIES = 4  # Redis must answer one of these pings at start ...
START_RETRY_S = 0.5  # ... this far apart
RETENTION_SWEEP_INTERVAL_S = 60.0  # age trimming of rooms nobody writes to
AGE_TRIM_SCAN = 64  # stream entries an append looks at for age trimming (amortised: > 1 per append)


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

# A batch of appends, in order.  KEYS: rooms, then (meta, stream, dedupe key) per draft.
# ARGV: max events, max age ms, dedupe ttl s, then per draft: epoch candidate, the event's
# JSON after the id, channel, room, "1" to de-duplicate, ts, ts in ms.
# Each room's new events go out as one message: "E<epoch> <json>\n<json>...".
APPEND_LUA = _LUA_NOW + _LUA_TRIM + _LUA_ENSURE + """
local max_events, max_age_ms, dedupe_s = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out, published, order = {}, {}, {}
for i = 0, (#KEYS - 1) / 3 - 1 do
  local meta, stream, dkey = KEYS[2 + 3 * i], KEYS[3 + 3 * i], KEYS[4 + 3 * i]
  local a = 4 + 7 * i
  local chan, dedupe, ts_ms = ARGV[a + 2], ARGV[a + 4] == '1', ARGV[a + 6]
  local seen = false
  if dedupe then seen = redis.call('GET', dkey) end
  if seen then
    out[#out + 1] = {0, seen}
  else
    local epoch = ensure(meta, stream, ARGV[a])
    local id = redis.call('HINCRBY', meta, 'last_id', 1)
    local json = '{"id":' .. id .. ARGV[a + 1]
    redis.call('XADD', stream, id .. '-0', 'j', json, 't', ts_ms)
    redis.call('HSET', meta, 'last_ts', ARGV[a + 5])
    redis.call('ZADD', KEYS[1], ts_ms, ARGV[a + 3])
    if dedupe then redis.call('SET', dkey, json, 'EX', dedupe_s) end
    trim(stream, max_events, max_age_ms, now_ms, 1)
    local p = published[chan]
    if not p then
      p = {epoch, {}}
      published[chan] = p
      order[#order + 1] = chan
    end
    p[2][#p[2] + 1] = json
    out[#out + 1] = {id, epoch}
  end
end
for _, chan in ipairs(order) do
  redis.call('PUBLISH', chan, 'E' .. published[chan][1] .. ' ' .. table.concat(published[chan][2], '\\n'))
end
return out
"""

# KEYS: meta, stream.  ARGV: epoch candidate, how many recent events.
# KEYS: meta, stream.  ARGV: epoch candidate, recent events wanted, "1" to create the room.
OPEN_LUA = _LUA_ENSURE + """
if ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[1]) == 0 then return {'', '0', {}} end
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


class RedisStore(Store):
    """History, ids and exactly-once keys in Redis; see the module docstring."""

    durable = True

    def __init__(self, link: RedisLink, retention: Retention | None = None) -> None:
        self.link = link
        self.retention = retention or Retention()
        self._scripts: dict[str, AsyncScript] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._queue: list[tuple[Draft, asyncio.Future[tuple[Event, bool]]]] = []
        self._batches = 0  # script calls in flight
        self._drainers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.link.start()
        await self._reachable()
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

    async def _reachable(self) -> None:
        """At start, Redis must answer (within a short, bounded retry): a server that listens but
        can serve nothing would only answer 503 to everyone."""
        for attempt in range(START_PING_TRIES):
            try:
                await self.link.call(self.link.redis.ping())
                return
            except Unavailable:
                if attempt + 1 == START_PING_TRIES:
                    raise Unavailable(f"cannot reach Redis at {self.link.safe_url} "
                                      f"(tried {START_PING_TRIES} times over {START_PING_TRIES * START_RETRY_S:.0f} s)"
                                      ) from None
                await asyncio.sleep(START_RETRY_S)

    async def ping(self) -> None:
        # One PING on the command client: Redis answers within the command timeout, or Unavailable.
        await self.link.call(self.link.redis.ping())

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

    async def open_room(self, room: str, recent_max: int, create: bool = True) -> RoomState:
        epoch, last_id, recent = await self.link.call(self._scripts["open"](
            keys=[key("meta", room), key("events", room)], args=[new_epoch(), recent_max, "1" if create else "0"]))
        if not epoch:
            return RoomState(new_epoch(), 0, [], exists=False)
        events = events_from_entries(recent)
        events.reverse()
        return RoomState(epoch.decode(), int(last_id or 0), events)

    async def append(self, draft: Draft) -> tuple[Event, bool]:
        """Queue ``draft``; the appends queued meanwhile go to Redis together, in one script call."""
        future: asyncio.Future[tuple[Event, bool]] = asyncio.get_running_loop().create_future()
        self._queue.append((draft, future))
        if self._batches < BATCHES_IN_FLIGHT:
            self._batches += 1
            task = asyncio.ensure_future(self._drain())  # next loop iteration: what arrives meanwhile joins
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:BATCH_MAX_APPENDS]
                del self._queue[:len(batch)]
                try:
                    results = await self._append_batch([draft for draft, _ in batch])
                except ChatError as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._batches -= 1

    async def _append_batch(self, drafts: list[Draft]) -> list[tuple[Event, bool]]:
        ret = self.retention
        keys: list[str] = [ROOMS_KEY]
        args: list[EncodableT] = [ret.max_events, int(ret.max_age_s * 1000), DEDUPE_TTL_S]
        for draft in drafts:
            dedupe = bool(draft.client_id and draft.session)
            dkey = KEY_PREFIX + "cid:" + dumps([draft.room, draft.session, draft.client_id]).decode()
            keys += [key("meta", draft.room), key("events", draft.room), dkey]
            rest = draft.with_id(0).json[len(b'{"id":0'):]
            args += [new_epoch(), rest, channel(draft.room), draft.room, "1" if dedupe else "0", draft.ts,
                     ts_ms(draft.ts)]
        results = await self.link.call(self._scripts["append"](keys=keys, args=args), write=True)
        out = []
        for draft, (first, second) in zip(drafts, results, strict=True):
            if first == 0:  # a retry: the first event again
                seen = event_from_json(second)
                out.append((Event(seen.id, seen.type, seen.room, seen.user, seen.ts, seen.text,
                                  draft.session, draft.client_id), False))
            else:
                out.append((draft.with_id(int(first)), True))
        return out

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
        # Members only (no withscores), and bytes: redis-py's type also allows str and (member, score)
        # pairs, which depend on options our client and this call leave off.
        members = cast("list[bytes]", await self.link.call(r.zrevrange(ROOMS_KEY, 0, LIST_ROOMS_MAX - 1)))
        names = [n.decode() for n in members]
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
