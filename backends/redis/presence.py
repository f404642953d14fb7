"""Presence shared by every process through Redis, with leases each process refreshes.

Per room, Redis holds who is present (hash ``obrolan:who:<room>``: name key ->
session id, display name, number of leases) and the leases (sorted set
``obrolan:lease:<room>``: ``<name key>\\x1f<process>`` scored by the Redis time in ms
when it runs out).  A process holds one lease per member it has locally and renews
it every ``expiry/4`` seconds to ``now + grace + expiry/2``; when a member's last
local connection has been gone for the grace period, the process drops its lease.
A member whose last lease goes leaves the room.  If a process dies its leases are
not renewed, and the first script to run after they run out (any process's renewal
or any attach, every ``expiry/4`` seconds) removes them: the users of a dead process
leave within grace + expiry.

Time Redis spent unreachable does not count: while any process holds a room some
script runs there every ``expiry/4`` seconds, so when a script finds the room silent
for longer than ``expiry`` it first moves every lease on by the silence.  Users are
then not all dropped and re-joined after an outage of Redis (nor after every holder
restarted); a dead process's users still leave within grace + expiry of the silence's end.

Every change happens in a Lua script, so exactly one process sees itself remove the
last lease of a member (or add the first) and it alone announces the leave (or the
join).  Each change also bumps a per-room version and is published on the room's
channel as ``J<version> <key>\\x1f<sid>\\x1f<name>`` / ``L...``; each process keeps a
mirror of the room's members from those, in version order (a gap is resynced with
``HGETALL``), to answer the name check and the user list without a round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from redis.commands.core import AsyncScript

from rooms.errors import ChatError, Unavailable
from rooms.models import Session
from rooms.ports import Core, PresenceStore
from rooms.presence import name_taken
from rooms.validation import name_key

from .link import RedisLink, channel, key

log = logging.getLogger("obrolan.redis.presence")

MIRROR_GAP_WAIT_S = 0.1  # a presence change missing this long is fetched from Redis
REAP_BATCH = 1000  # expired leases removed per script run at most

_LUA_PRELUDE = r"""
local who, lease, ver, clock, chan = KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local function version()
  -- Versions start from the Redis time (x1000), so they still grow if Redis lost the room.
  if redis.call('EXISTS', ver) == 0 then redis.call('SET', ver, string.format('%.0f', now_ms * 1000)) end
end
local function tell(kind, nk, sid, name)
  version()
  local v = redis.call('INCR', ver)
  redis.call('PUBLISH', chan, kind .. string.format('%.0f', v) .. ' ' .. nk .. '\31' .. sid .. '\31' .. name)
  out[#out + 1] = {kind, v, nk, sid, name}
end
local function parse(w)
  return string.match(w, '^(.-)\31(.-)\31(%d+)$')
end
local function unlease(member)
  if redis.call('ZREM', lease, member) == 0 then return end
  local nk = string.sub(member, 1, string.find(member, '\31', 1, true) - 1)
  local w = redis.call('HGET', who, nk)
  if not w then return end
  local sid, name, n = parse(w)
  n = tonumber(n) - 1
  if n > 0 then
    redis.call('HSET', who, nk, sid .. '\31' .. name .. '\31' .. n)
  else
    redis.call('HDEL', who, nk)
    tell('L', nk, sid, name)
  end
end
local function reap()
  -- While any process holds the room, some script runs here every expiry/4 s.  A longer
  -- silence means Redis was unreachable (or every holder was gone): that time does not count.
  local last = tonumber(redis.call('GET', clock))
  redis.call('SET', clock, now_ms)
  if last and now_ms - last > tonumber(ARGV[4]) then
    local all = redis.call('ZRANGE', lease, 0, -1, 'WITHSCORES')
    for i = 1, #all, 2 do redis.call('ZADD', lease, tonumber(all[i + 1]) + now_ms - last, all[i]) end
  end
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', lease, '-inf', now_ms, 'LIMIT', 0, REAP_BATCH)) do unlease(m) end
end
local function hold(nk, sid, name, proc, ms)
  local member = nk .. '\31' .. proc
  local w = redis.call('HGET', who, nk)
  if w then
    local wsid, wname, n = parse(w)
    if wsid ~= sid then return 0 end
    if redis.call('ZADD', lease, now_ms + ms, member) == 1 then
      redis.call('HSET', who, nk, wsid .. '\31' .. wname .. '\31' .. (tonumber(n) + 1))
    end
    return 1
  end
  redis.call('ZADD', lease, now_ms + ms, member)
  redis.call('HSET', who, nk, sid .. '\31' .. name .. '\31' .. 1)
  tell('J', nk, sid, name)
  return 1
end
""".replace("REAP_BATCH", str(REAP_BATCH))

# ARGV: channel, process, lease ms, stall ms, name key, sid, name.  {1 | 0 (name taken), changes}
ATTACH_LUA = _LUA_PRELUDE + r"""
reap()
return {hold(ARGV[5], ARGV[6], ARGV[7], ARGV[2], tonumber(ARGV[3])), out}
"""

# ARGV: channel, process, lease ms, stall ms, then (name key, sid, name) per local member.
REFRESH_LUA = _LUA_PRELUDE + r"""
reap()
for i = 5, #ARGV, 3 do hold(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[2], tonumber(ARGV[3])) end
return {1, out}
"""

# ARGV: channel, process, (unused), stall ms, name key, sid: this process's grace for the member ran out.
EXPIRE_LUA = _LUA_PRELUDE + r"""
local w = redis.call('HGET', who, ARGV[5])
if w and parse(w) == ARGV[6] then unlease(ARGV[5] .. '\31' .. ARGV[2]) end
reap()
return {1, out}
"""

# ARGV: channel, process, (unused), stall ms, name key, sid: leave now, whichever processes hold leases.
LEAVE_LUA = _LUA_PRELUDE + r"""
reap()
local w = redis.call('HGET', who, ARGV[5])
if not w then return {0, out} end
local sid, name = parse(w)
if sid ~= ARGV[6] then return {0, out} end
redis.call('HDEL', who, ARGV[5])
local pattern = string.gsub(ARGV[5], '[%*%?%[%]\\]', '\\%0') .. '\31*'
local cursor = '0'
repeat
  local res = redis.call('ZSCAN', lease, cursor, 'MATCH', pattern, 'COUNT', 1000)
  cursor = res[1]
  for i = 1, #res[2], 2 do redis.call('ZREM', lease, res[2][i]) end
until cursor == '0'
tell('L', ARGV[5], sid, name)
return {1, out}
"""

# KEYS: who, ver.  The members and the version they are at, read together.
SYNC_LUA = r"""
local t = redis.call('TIME')
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], string.format('%.0f', (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) * 1000))
end
return {redis.call('GET', KEYS[2]), redis.call('HGETALL', KEYS[1])}
"""

Change = tuple[str, int, str, str, str]  # kind ("J"/"L"), version, name key, sid, name


def _change(raw: list[Any]) -> Change:
    kind, ver, nk, sid, name = raw
    return kind.decode(), int(ver), nk.decode(), sid.decode(), name.decode()


class Mirror:
    """This process's copy of a room's members, applied in version order."""

    __slots__ = ("early", "ver", "who")

    def __init__(self) -> None:
        self.ver = 0
        self.who: dict[str, tuple[str, str]] = {}  # name key -> (sid, name)
        self.early: dict[int, Change] = {}

    def users(self) -> list[str]:
        return sorted((name for _sid, name in self.who.values()), key=str.casefold)

    def apply(self, change: Change) -> list[Change]:
        """Apply ``change`` if it is next (or hold it); return the changes now applied."""
        ver = change[1]
        if ver <= self.ver:
            return []
        if ver > self.ver + 1:
            self.early[ver] = change
            return []
        done = [change]
        self._apply(change)
        while self.early:
            nxt = self.early.pop(self.ver + 1, None)
            if nxt is None:
                break
            self._apply(nxt)
            done.append(nxt)
        return done

    def _apply(self, change: Change) -> None:
        kind, ver, nk, sid, name = change
        if kind == "J":
            self.who[nk] = (sid, name)
        else:
            self.who.pop(nk, None)
        self.ver = ver

    def reset(self, ver: int, who: dict[str, tuple[str, str]]) -> None:
        if ver < self.ver:
            return  # an older snapshot than what we applied meanwhile
        self.ver, self.who = ver, who
        self.early = {v: c for v, c in self.early.items() if v > ver}
        nxt = self.early.pop(ver + 1, None)
        if nxt is not None:
            self.apply(nxt)


class RedisPresence(PresenceStore):
    shared = True

    def __init__(self, link: RedisLink, grace_s: float, expiry_s: float) -> None:
        self.link = link
        self.expiry_s = expiry_s
        self.lease_ms = int((grace_s + expiry_s / 2) * 1000)
        self.stall_ms = int(expiry_s * 1000)  # no renewal in a room for this long: Redis was away
        self.core: Core | None = None
        self._mirrors: dict[str, Mirror] = {}
        self._scripts: dict[str, AsyncScript] = {}
        self._resyncs: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # -- life cycle (driven by the broker) --------------------------------------

    async def start(self, core: Core) -> None:
        self.core = core
        r = self.link.redis
        for name, src in (("attach", ATTACH_LUA), ("refresh", REFRESH_LUA), ("expire", EXPIRE_LUA),
                          ("leave", LEAVE_LUA), ("sync", SYNC_LUA)):
            self._scripts[name] = r.register_script(src)
        self._loop_task = asyncio.ensure_future(self._refresh_loop())

    async def close(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
        for handle in self._resyncs.values():
            handle.cancel()
        for task in tuple(self._tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sync(self, room: str) -> None:
        """(Re)load the room's members from Redis; tell the hub what changed."""
        ver, flat = await self.link.call(self._scripts["sync"](keys=[key("who", room), key("pver", room)]))
        who = {}
        for i in range(0, len(flat), 2):
            sid, name, _n = flat[i + 1].decode().split("\x1f")
            who[flat[i].decode()] = (sid, name)
        mirror = self._mirrors.setdefault(room, Mirror())
        before = dict(mirror.who)
        mirror.reset(int(ver), who)
        self._changed(room, before, mirror)

    def forget(self, room: str) -> None:
        self._mirrors.pop(room, None)
        handle = self._resyncs.pop(room, None)
        if handle is not None:
            handle.cancel()

    # -- what the hub asks -------------------------------------------------------

    def users(self, room: str) -> list[str] | None:
        mirror = self._mirrors.get(room)
        return mirror.users() if mirror is not None else None

    def check(self, room: str, session: Session) -> None:
        mirror = self._mirrors.get(room)
        held = mirror.who.get(name_key(session.name)) if mirror is not None else None
        if held is not None and held[0] != session.sid:
            raise name_taken(session)

    async def joined(self, room: str, session: Session) -> bool:
        nk = name_key(session.name)
        try:
            ok, changes = await self._run("attach", room, self.lease_ms, nk, session.sid, session.name)
        except Unavailable as exc:
            # Keep serving: the member is present here now; the first lease renewal after
            # Redis is back adds it everywhere (and announces the join if it is one).
            log.info("presence of %s in %s deferred: %s", session.name, room, exc.detail)
            return False
        mine = self._local_changes(room, changes, ("J", session.sid))
        if not ok:
            raise name_taken(session)
        return mine

    async def expired(self, room: str, session: Session) -> bool:
        try:
            _ok, changes = await self._run("expire", room, 0, name_key(session.name), session.sid)
        except ChatError as exc:  # the lease runs out by itself; whoever reaps it announces
            log.info("could not drop the lease of %s in %s: %s", session.name, room, exc.detail)
            return False
        return self._local_changes(room, changes, ("L", session.sid))

    async def left(self, room: str, session: Session, was_member: bool) -> bool:
        _ok, changes = await self._run("leave", room, 0, name_key(session.name), session.sid)
        return self._local_changes(room, changes, ("L", session.sid))

    async def _run(self, script: str, room: str, lease_ms: int, *args: str) -> tuple[int, list[Change]]:
        ok, raw = await self.link.call(self._scripts[script](
            keys=self._keys(room), args=[channel(room), self.link.proc, lease_ms, self.stall_ms, *args]))
        return int(ok), [_change(c) for c in raw]

    @staticmethod
    def _keys(room: str) -> list[str]:
        return [key("who", room), key("lease", room), key("pver", room), key("pclock", room)]

    def _local_changes(self, room: str, changes: list[Change], own: tuple[str, str]) -> bool:
        """Apply what our script changed; announce the changes it claimed, except ``own``
        (the caller announces that one).  True if ``own`` is among them."""
        mine = False
        mirror = self._mirrors.setdefault(room, Mirror())
        for change in changes:
            mirror.apply(change)
            kind, _ver, _nk, sid, name = change
            if (kind, sid) == own:
                mine = True
            elif self.core is not None:
                self._spawn(self.core.announce(room, "join" if kind == "J" else "leave", Session(sid, name)))
        self._watch_gap(room, mirror)
        return mine

    # -- what other processes changed ------------------------------------------------

    def on_change(self, room: str, data: bytes) -> None:
        """``J<ver> <key>\\x1f<sid>\\x1f<name>`` or ``L...`` from the room's channel."""
        mirror = self._mirrors.get(room)
        if mirror is None:
            return
        head, _, body = data.partition(b" ")
        nk, sid, name = body.decode().split("\x1f")
        before = dict(mirror.who)
        mirror.apply((head[:1].decode(), int(head[1:]), nk, sid, name))
        # The user list goes out after the join/leave event that follows (core.deliver),
        # as on the process that made the change; only members to drop here are handled now:
        # a session that left through another process (Leave there) leaves here too.
        self._changed(room, before, mirror, broadcast=False, drop=True)
        self._watch_gap(room, mirror)

    def _changed(self, room: str, before: dict[str, tuple[str, str]], mirror: Mirror,
                 broadcast: bool = True, drop: bool = False) -> None:
        """Tell the hub; ``drop``: close the local sockets of sessions that left the room.

        A resync (``drop`` False) never closes anything: a member of ours missing from Redis
        (Redis lost it) is put back by our next lease renewal.
        """
        if before == mirror.who or self.core is None:
            return
        still = {sid for sid, _name in mirror.who.values()}
        gone = [Session(sid, name) for sid, name in before.values() if sid not in still] if drop else []
        if broadcast or gone:
            self.core.presence_changed(room, gone)

    def _watch_gap(self, room: str, mirror: Mirror) -> None:
        if mirror.early and room not in self._resyncs:
            loop = asyncio.get_running_loop()
            self._resyncs[room] = loop.call_later(MIRROR_GAP_WAIT_S, self._resync, room)

    def _resync(self, room: str) -> None:
        self._resyncs.pop(room, None)
        mirror = self._mirrors.get(room)
        if mirror is not None and mirror.early:
            self._spawn(self._sync_quietly(room))

    async def _sync_quietly(self, room: str) -> None:
        try:
            await self.sync(room)
        except ChatError as exc:
            log.info("presence of %s not resynced: %s", room, exc.detail)

    # -- leases ---------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.expiry_s / 4)
            try:
                await self.refresh()
            except ChatError as exc:
                log.info("presence leases not renewed: %s", exc.detail)

    async def refresh(self) -> None:
        """Renew this process's leases in every room it holds; reap expired ones there."""
        core = self.core
        rooms = list(self._mirrors)
        if core is None or not rooms:
            return
        r = self.link.redis
        async with r.pipeline(transaction=False) as pipe:
            for room in rooms:
                members: list[str] = []
                for s in core.local_members(room):
                    members += [name_key(s.name), s.sid, s.name]
                await self._scripts["refresh"](
                    keys=self._keys(room), args=[channel(room), self.link.proc, self.lease_ms, self.stall_ms, *members],
                    client=pipe)
            results = await self.link.call(pipe.execute())
        for room, (_ok, raw) in zip(rooms, results, strict=True):
            if room in self._mirrors:
                self._local_changes(room, [_change(c) for c in raw], ("", ""))
