"""A room's waiting long-polls, and their timeouts: one timer per distinct wait, not per poll.

A thousand polls waiting in a room had a thousand timers (``call_later``: a handle pushed on the
loop's heap per poll, cancelled when the poll is answered, and left there until the heap is
cleaned): 5-7 % of a long-poll answer's server CPU (docs/performance.md, "Long-poll answers").
Polls that wait equally long time out in the order they started, so the waiters of one ``wait``
are kept in arrival order with their deadlines, and one timer per distinct ``wait`` is armed for
the first deadline; when it fires, every waiter due is resolved and the timer is armed for the
next.  A publish resolves them all and cancels a handful of timers, not a thousand.
"""

from __future__ import annotations

import asyncio


class Waiters:
    """Futures of waiting long-polls: resolved by :meth:`wake`, or at their timeout."""

    __slots__ = ("_by_wait", "_timers", "_wait_of")

    def __init__(self) -> None:
        self._wait_of: dict[asyncio.Future[None], float] = {}  # waiter -> its wait (s)
        self._by_wait: dict[float, dict[asyncio.Future[None], float]] = {}  # wait -> {waiter: deadline}, in order
        self._timers: dict[float, asyncio.TimerHandle] = {}  # wait -> the timer for its first deadline

    def __len__(self) -> int:
        return len(self._wait_of)

    @property
    def timers(self) -> int:
        """Timers armed now (one per distinct wait of the polls waiting)."""
        return len(self._timers)

    def add(self, timeout_s: float) -> asyncio.Future[None]:
        """A future resolved by :meth:`wake` or ``timeout_s`` from now, whichever is first."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + timeout_s
        queue = self._by_wait.get(timeout_s)
        if queue is None:
            queue = self._by_wait[timeout_s] = {}
        queue[waiter] = deadline
        self._wait_of[waiter] = timeout_s
        if timeout_s not in self._timers:
            self._timers[timeout_s] = loop.call_at(deadline, self._expire, timeout_s)
        return waiter

    def discard(self, waiter: asyncio.Future[None]) -> None:
        """``waiter``'s wait is over (answered, cancelled): forget it (a woken one is gone already)."""
        wait_s = self._wait_of.pop(waiter, None)
        if wait_s is None:
            return
        queue = self._by_wait[wait_s]
        del queue[waiter]
        if not queue:
            del self._by_wait[wait_s]
            self._timers.pop(wait_s).cancel()

    def wake(self) -> None:
        """Resolve every waiter: one ``set_result`` each (one task step scheduled), nothing more."""
        woken, timers = self._wait_of, self._timers
        self._wait_of, self._by_wait, self._timers = {}, {}, {}
        for waiter in woken:
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
