"""The Redis backend: history, ids, presence and fan-out shared by every process (``--redis-url``).

:mod:`.link` (clients, key names), :mod:`.store` (the history, atomic Lua appends),
:mod:`.broker` (pub/sub fan-out with gap fill), :mod:`.presence` (leased presence).
"""

from __future__ import annotations

from rooms.models import Retention
from rooms.ports import Backend

from .broker import RedisBroker
from .link import RedisLink
from .presence import RedisPresence
from .store import RedisStore


def redis_backend(url: str, *, grace_s: float, expiry_s: float, retention: Retention | None = None) -> Backend:
    """The store, broker and presence of one process on the Redis at ``url``."""
    link = RedisLink(url)
    store = RedisStore(link, retention)
    presence = RedisPresence(link, grace_s=grace_s, expiry_s=expiry_s)
    return Backend(store, RedisBroker(link, store, presence), presence)


__all__ = ["RedisLink", "RedisStore", "redis_backend"]
