"""Fan-out between processes over Redis pub/sub, with gaps filled from the room's stream.

A process subscribes only to the rooms its hub holds (``hold`` before the hub reads a
room's state, so nothing appended in between is missed; ``release`` when the hub drops
it).  One reader task takes every message off the subscription and hands events to
``core.deliver``: the hub's one publish path, one encode per process.  An event this
process appended is delivered here at once by :meth:`RedisBroker.publish` (the append
script has already published it to the others); its echo is skipped by id undecoded.

Ids tell us when something is missing: an event newer than the buffer's next id is held
back by the buffer, and if the gap is still there :data:`GAP_FILL_WAIT_S` later (the
missing event was not merely in flight on the other connection) it is read from the
stream (``XRANGE``).  When the subscription drops, the reader reconnects with jittered
exponential backoff, subscribes again, then catches every held room up from the stream
and resyncs its presence; until then sends fail with ``unavailable`` and reads are
served from what the process holds.  An epoch that differs from the buffer's (Redis lost
the room) reloads the room in the hub.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Coroutine
from typing import Any

from redis.asyncio.client import PubSub

from rooms.errors import ChatError, Unavailable
from rooms.models import Event, Payload
from rooms.ports import Broker, Core

from .link import KEY_PREFIX, UNREACHABLE, RedisLink, channel, event_from_json
from .presence import RedisPresence
from .store import CATCH_UP_BATCH, RedisStore

log = logging.getLogger("obrolan.redis.broker")

GAP_FILL_WAIT_S = 0.05  # a missing id not arrived by then is read from the stream
SUBSCRIBE_TIMEOUT_S = 3.0
RECONNECT_MIN_S = 0.1
RECONNECT_MAX_S = 2.0
HOLD_WAIT_S = 1.0  # a room opened while reconnecting waits this long for the subscription
HEARTBEAT_S = 5.0  # ping the subscription this often; no answer for 3 pings: reconnect

ROOM_CHANNEL_PREFIX = channel("").encode()


class RedisBroker(Broker):
    def __init__(self, link: RedisLink, store: RedisStore, presence: RedisPresence) -> None:
        self.link = link
        self.store = store
        self.presence = presence
        self.core: Core | None = None
        self._held: set[str] = set()
        self._pubsub: PubSub | None = None
        self._confirm: dict[bytes, asyncio.Future[None]] = {}
        self._gap_timers: dict[str, asyncio.TimerHandle] = {}
        self._fill_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._last_pong = 0.0
        self._up = asyncio.Event()  # subscribed (again) and ready for hold()
        self._down = asyncio.Event()  # not subscribed: the reader lost (or has not made) it
        self._down.set()
        self._closing = False
        self.own_channel = f"{KEY_PREFIX}proc:{link.proc}"
        self._relay_tag = b"T" + link.proc.encode() + b" "

    # -- life cycle -------------------------------------------------------------------

    async def start(self, core: Core) -> None:
        self.core = core
        self._reader = asyncio.ensure_future(self._run())
        self._watchdog = asyncio.ensure_future(self._watch())

    async def close(self) -> None:
        self._closing = True
        for task in (self._reader, self._watchdog, *self._tasks):
            if task is not None:
                task.cancel()
        for handle in self._gap_timers.values():
            handle.cancel()
        if self._pubsub is not None:
            await self._drop(self._pubsub)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the subscription -------------------------------------------------------------

    async def _run(self) -> None:
        backoff = RECONNECT_MIN_S
        while not self._closing:
            pubsub = self.link.subscriber.pubsub() if self.link.subscriber is not None else None
            if pubsub is None:
                return
            rooms = set(self._held)
            loop = asyncio.get_running_loop()
            confirms = {ch: loop.create_future() for ch in
                        [self.own_channel.encode(), *(channel(r).encode() for r in rooms)]}
            try:
                self._confirm.update(confirms)
                await pubsub.subscribe(*confirms)
                self._pubsub = pubsub
                self._last_pong = time.monotonic()
                self._spawn(self._recover(pubsub, rooms, confirms))
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self._dispatch(message)
                        backoff = RECONNECT_MIN_S
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._closing:  # loud once per outage, quiet while it lasts
                    log.log(logging.WARNING if self._pubsub is not None else logging.DEBUG,
                            "Redis subscription lost (%s); reconnecting", str(exc) or type(exc).__name__)
            self._pubsub = None
            self._up.clear()
            self._down.set()
            self._fail_confirms()
            await self._drop(pubsub)
            if self._closing:
                return
            await self.link.reset_connections()  # the pooled ones are as dead as this one was
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, RECONNECT_MAX_S)

    async def _recover(self, pubsub: PubSub, rooms: set[str], confirms: dict[bytes, asyncio.Future[None]]) -> None:
        """Once subscribed again: read what we missed meanwhile and where presence went."""
        try:
            await asyncio.wait_for(asyncio.gather(*confirms.values()), SUBSCRIBE_TIMEOUT_S)
            if self._pubsub is pubsub:
                self._down.clear()
                self._up.set()
            for room in rooms & self._held:
                await self.catch_up(room)
                await self.presence.sync(room)
        except (ChatError, TimeoutError) as exc:
            if self._pubsub is pubsub:
                log.warning("could not catch up after reconnecting (%s); reconnecting again", exc)
                await self._drop(pubsub)  # the reader fails and starts over

    async def _watch(self) -> None:
        """A subscription can die silently (no FIN from a vanished host): ping it."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            pubsub = self._pubsub
            if pubsub is None:
                continue
            if time.monotonic() - self._last_pong > 3 * HEARTBEAT_S:
                log.warning("Redis subscription stopped answering; reconnecting")
                await self._drop(pubsub)
                continue
            try:
                await pubsub.ping()
            except Exception as exc:
                log.info("ping on the subscription failed: %s", exc)

    @staticmethod
    async def _drop(pubsub: PubSub) -> None:
        try:
            await pubsub.aclose()
        except Exception as exc:
            log.debug("closing the subscription: %s", exc)

    def _fail_confirms(self) -> None:
        for future in self._confirm.values():
            if not future.done():
                future.set_exception(Unavailable(UNREACHABLE))
                future.exception()  # retrieved: the waiter raises it itself
        self._confirm.clear()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            ch, data = message["channel"], message["data"]
            if not ch.startswith(ROOM_CHANNEL_PREFIX) or not data:
                return
            room = ch[len(ROOM_CHANNEL_PREFIX):].decode()
            tag = data[:1]
            if tag == b"E":
                self._on_event(room, data)
            elif tag in (b"J", b"L"):
                self.presence.on_change(room, data)
            elif tag == b"T":
                self._on_relay(room, data)
        elif kind == "subscribe":
            future = self._confirm.pop(message["channel"], None)
            if future is not None and not future.done():
                future.set_result(None)
        elif kind == "pong":
            self._last_pong = time.monotonic()

    # -- rooms ------------------------------------------------------------------------------

    async def hold(self, room: str) -> None:
        """Subscribe to ``room``; if the subscription is (re)connecting, wait for it a little."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLD_WAIT_S
        failed: PubSub | None = None
        while True:
            pubsub = await self._subscription(failed, deadline - loop.time())
            try:
                await self._subscribe(pubsub, room)
                return
            except Unavailable:
                self.release(room)
                if loop.time() >= deadline:
                    raise
                failed = pubsub  # lost meanwhile, most likely: try on the next subscription
            except BaseException:
                self.release(room)
                raise

    async def _subscription(self, failed: PubSub | None, timeout_s: float) -> PubSub:
        """The live subscription (not ``failed``), waiting up to ``timeout_s`` for one."""
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                while True:
                    pubsub = self._pubsub
                    if self._up.is_set() and pubsub is not None and pubsub is not failed:
                        return pubsub
                    await (self._down.wait() if self._up.is_set() else self._up.wait())
        except TimeoutError:
            raise Unavailable(UNREACHABLE) from None

    async def _subscribe(self, pubsub: PubSub, room: str) -> None:
        ch = channel(room).encode()
        self._held.add(room)
        future = self._confirm.get(ch)
        if future is None:
            future = self._confirm[ch] = asyncio.get_running_loop().create_future()
        try:
            await pubsub.subscribe(ch)
        except Exception as exc:  # whatever it is, that subscription is broken (redis-py may not say so)
            raise Unavailable(UNREACHABLE) from exc
        try:
            await asyncio.wait_for(asyncio.shield(future), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            raise Unavailable(UNREACHABLE) from None
        await self.presence.sync(room)

    def release(self, room: str) -> None:
        self._held.discard(room)
        self.presence.forget(room)
        self._fill_locks.pop(room, None)
        handle = self._gap_timers.pop(room, None)
        if handle is not None:
            handle.cancel()
        if self._pubsub is not None:
            self._spawn(self._unsubscribe(room))

    async def _unsubscribe(self, room: str) -> None:
        pubsub = self._pubsub
        if room in self._held or pubsub is None:
            return  # held again meanwhile
        try:
            await pubsub.unsubscribe(channel(room))
        except Exception as exc:
            log.debug("unsubscribe from %s: %s", room, exc)

    # -- events ------------------------------------------------------------------------------

    def _on_event(self, room: str, data: bytes) -> None:
        core = self.core
        position = core.position(room) if core is not None else None
        if core is None or position is None:
            return
        held_epoch, held_last_id = position
        space = data.index(b" ")
        epoch = data[1:space].decode()
        if epoch != held_epoch:
            self._schedule_fill(room, 0.0)  # the catch-up sees the new epoch and reloads the room
            return
        for body in data[space + 1:].split(b"\n"):  # one append batch's events of this room, in order
            event_id = int(body[6:body.index(b",", 6)])  # body is b'{"id":N,...'
            if event_id <= held_last_id:
                continue  # ours, or already filled in
            last_id = core.deliver(room, event_from_json(body))
            held_last_id = last_id if last_id is not None else held_last_id
            if last_id is not None and last_id < event_id:
                self._schedule_fill(room, GAP_FILL_WAIT_S)

    def _schedule_fill(self, room: str, delay_s: float) -> None:
        if room not in self._gap_timers:
            loop = asyncio.get_running_loop()
            self._gap_timers[room] = loop.call_later(delay_s, self._fill_gap, room)

    def _fill_gap(self, room: str) -> None:
        self._gap_timers.pop(room, None)
        self._spawn(self._catch_up_quietly(room))

    async def _catch_up_quietly(self, room: str) -> None:
        try:
            await self.catch_up(room)
        except ChatError as exc:
            log.info("gap in %s not filled yet: %s", room, exc.detail)  # the reconnect catches up

    async def catch_up(self, room: str) -> None:
        core = self.core
        if core is None:
            return
        lock = self._fill_locks.setdefault(room, asyncio.Lock())
        async with lock:
            while True:
                position = core.position(room)
                if position is None:
                    return
                held_epoch, last_id = position
                epoch, events = await self.store.since(room, last_id)
                if epoch != held_epoch or (events and events[0].id != last_id + 1):
                    # Redis lost the room (new epoch) or trimmed past us: start it over.
                    await core.reload_room(room)
                    return
                for event in events:
                    core.deliver(room, event)
                if len(events) < CATCH_UP_BATCH:
                    return

    # -- ephemeral notices -------------------------------------------------------------

    def publish(self, room: str, event: Event) -> None:
        # The append script already published it to every process; here it goes out at once.
        if self.core is not None:
            self.core.deliver(room, event)

    def relay(self, room: str, payload: Payload) -> None:
        if self.core is not None:
            self.core.deliver_ephemeral(room, payload)
        if self._pubsub is not None:
            self._spawn(self._publish(channel(room), self._relay_tag + payload.json))

    async def _publish(self, ch: str, data: bytes) -> None:
        try:
            await self.link.redis.publish(ch, data)
        except Exception as exc:  # a typing notice is not worth an error
            log.debug("relay to %s failed: %s", ch, exc)

    def _on_relay(self, room: str, data: bytes) -> None:
        if data.startswith(self._relay_tag) or self.core is None:
            return
        self.core.deliver_ephemeral(room, Payload(data[data.index(b" ") + 1:]))
