"""Per-session token buckets for sending messages."""

from __future__ import annotations

import time
from collections.abc import Callable

from .errors import RateLimited


class TokenBucketLimiter:
    """``rate_per_s`` tokens refill per second up to ``burst``; each send takes one."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> None:
        """Take one token for ``key`` or raise :class:`RateLimited`."""
        if self.rate_per_s <= 0:
            return  # limiting disabled
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            raise RateLimited((1.0 - tokens) / self.rate_per_s)
        self._buckets[key] = (tokens - 1.0, now)

    def sweep(self) -> None:
        """Forget buckets that have refilled completely: they hold no information."""
        if self.rate_per_s <= 0:
            return
        now = self._clock()
        full_after_s = self.burst / self.rate_per_s
        stale = [k for k, (_, at) in self._buckets.items() if now - at > full_after_s]
        for key in stale:
            del self._buckets[key]
