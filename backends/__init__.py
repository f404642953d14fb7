"""Backends, picked by URL or name and imported only when chosen.

====================  =================================================================
``memory``            :mod:`backends.memory`: history in memory only; one process
``sqlite[:PATH]``     :mod:`backends.sqlite`: a durable file (the default); one process
``redis://...``       :mod:`backends.redis`: history, ids, presence and fan-out in Redis,
                      shared by every process using it
====================  =================================================================
"""

from __future__ import annotations

from rooms.models import Retention
from rooms.ports import Backend, PresenceStore, Store


def open_store(spec: str, data_dir: str, retention: Retention | None = None) -> Store:
    """A one-process history store by name: ``memory``, ``sqlite`` or ``sqlite:PATH``."""
    if spec == "memory":
        from .memory import MemoryStore

        return MemoryStore()
    if spec == "sqlite" or spec.startswith("sqlite:"):
        from .sqlite import SQLiteStore  # lazy: only when chosen

        path = spec.removeprefix("sqlite:").removeprefix("//") if spec != "sqlite" else ""
        return SQLiteStore(path or None, data_dir, retention)
    raise ValueError(f"unknown store {spec!r}: use 'memory' or 'sqlite'")


def open_backend(store: str = "memory", data_dir: str = "./data", retention: Retention | None = None, *,
                 redis_url: str = "", grace_s: float = 10.0, expiry_s: float = 5.0) -> Backend:
    """The store, broker and presence of one process: Redis when ``redis_url`` is given
    (it replaces ``store``), else ``store`` with the local broker and presence."""
    if redis_url:
        from .redis import redis_backend  # lazy: redis is imported only when chosen

        return redis_backend(redis_url, grace_s=grace_s, expiry_s=expiry_s, retention=retention)
    from .memory import LocalBroker

    return Backend(open_store(store, data_dir, retention), LocalBroker(), PresenceStore())


__all__ = ["open_backend", "open_store"]
