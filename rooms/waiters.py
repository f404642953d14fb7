"""A room's waiting long-polls, and their timeouts: one timer per distinct wait, not per poll.

A thousand polls waiting in a room had a thousand timers (``call_later``: a handle pushed on the
loop's heap per poll, cancelled when the poll is answered, and left there until the heap is
cleaned): 5-7 % of a long-poll answer's server CPU (docs/performance.md, "Long-poll answers").
Polls that wait equally long time out in the order they started, so the waiters of one ``wait``
are kept in arrival order with their deadlines, and one timer per distinct ``wait`` is armed for
the first deadline; when it fires, every waiter due is resolved and the timer is armed for the
next.  A publish resolves them all and cancels a handful of timers, not a thousand.

A waiter may come with a ``ready`` callback, called by :meth:`Waiters.wake` before its future is
resolved: a long-poll answers there, a thousand in one loop, instead of in a thousand task steps
that each go through the request machinery before the next answer can go (docs/performance.md,
"Long-poll answers at the wake").  The callbacks of one wake share a dict: what one of them
computes (the answer's bytes), the others reuse.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("obrolan.hub")

Ready = Callable[[dict[Any, Any]], None]  # called at a wake with the dict its waiters share


class Waiters:
    """Futures of waiting long-polls: resolved by :meth:`wake`, or at their timeout."""

    __slots__ = ("_by_wait", "_timers", "_wait_of")

    def __init__(self) -> None:
        # waiter -> its wait (s), its ready, whose it is (a name: see wake's ``but``)
        self._wait_of: dict[asyncio.Future[None], tuple[float, Ready | None, str | None]] = {}
        self._by_wait: dict[float, dict[asyncio.Future[None], float]] = {}  # wait -> {waiter: deadline}, in order
        self._timers: dict[float, asyncio.TimerHandle] = {}  # wait -> the timer for its first deadline

    def __len__(self) -> int:
        return len(self._wait_of)

    @property
    def timers(self) -> int:
        """Timers armed now (one per distinct wait of the polls waiting)."""
        return len(self._timers)

    def add(self, timeout_s: float, ready: Ready | None = None, owner: str | None = None) -> asyncio.Future[None]:
        """A future resolved by :meth:`wake` (after calling ``ready``) or ``timeout_s`` from now,
        whichever is first.  ``owner``: whose wait it is, for :meth:`wake`'s ``but``."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + timeout_s
        queue = self._by_wait.get(timeout_s)
        if queue is None:
            queue = self._by_wait[timeout_s] = {}
        queue[waiter] = deadline
        self._wait_of[waiter] = timeout_s, ready, owner
        if timeout_s not in self._timers:
            self._timers[timeout_s] = loop.call_at(deadline, self._expire, timeout_s)
        return waiter

    def discard(self, waiter: asyncio.Future[None]) -> None:
        """``waiter``'s wait is over (answered, cancelled): forget it (a woken one is gone already)."""
        entry = self._wait_of.pop(waiter, None)
        if entry is None:
            return
        wait_s = entry[0]
        queue = self._by_wait[wait_s]
        del queue[waiter]
        if not queue:
            del self._by_wait[wait_s]
            self._timers.pop(wait_s).cancel()

    def wake(self, but: str | None = None) -> None:
        """Resolve every waiter (but those whose ``owner`` is ``but``, which wait on): its ``ready``
        (if any), then one ``set_result`` (one task step scheduled), nothing more."""
        if but is None:
            woken, timers = self._wait_of, self._timers
            self._wait_of, self._by_wait, self._timers = {}, {}, {}
        else:  # rare (a typing notice): the waiters woken are taken out one by one
            woken = {waiter: entry for waiter, entry in self._wait_of.items() if entry[2] != but}
            for waiter in woken:
                self.discard(waiter)
            timers = {}
        shared: dict[Any, Any] = {}
        for waiter, (_wait_s, ready, _owner) in woken.items():
            if ready is not None and not waiter.done():  # not done: not cancelled (its poll is over)
                try:
                    ready(shared)
                except Exception:  # one poll's fault must not keep the others waiting
                    log.exception("a long-poll could not answer at its wake (its task answers it)")
        for waiter in woken:  # every answer is out before the first task step is scheduled
            _resolve(waiter)
        for timer in timers.values():
            timer.cancel()

    def _expire(self, wait_s: float) -> None:
        del self._timers[wait_s]
        queue = self._by_wait.get(wait_s)
        if not queue:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = []
        for waiter, deadline in queue.items():
            if deadline > now:  # the next one: the timer waits for it
                self._timers[wait_s] = loop.call_at(deadline, self._expire, wait_s)
                break
            due.append(waiter)
        for waiter in due:
            del queue[waiter]
            del self._wait_of[waiter]
            _resolve(waiter)
        if not queue:
            del self._by_wait[wait_s]


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
