"""Obrolan's room core: hub, presence, per-room buffer, rate limits and stores.

Nothing in this package knows about HTTP requests or WebSocket connections.
"""

from __future__ import annotations

from .errors import ChatError
from .events import Event
from .hub import Hub, HubConfig
from .presence import Session
from .store import MemoryStore, Retention, Store

__all__ = ["ChatError", "Event", "Hub", "HubConfig", "MemoryStore", "Retention", "Session", "Store",
           "make_store"]


def make_store(spec: str, data_dir: str, retention: Retention | None = None) -> Store:
    """Pick a store by name or URL; implementations are imported only when chosen.

    ``retention`` bounds what a durable store keeps; the memory store keeps only
    what the hub's buffer holds anyway.
    """
    if spec == "memory":
        return MemoryStore()
    if spec == "sqlite" or spec.startswith("sqlite:"):
        from .sqlite_store import SQLiteStore  # lazy: only when chosen

        path = spec.removeprefix("sqlite:").removeprefix("//") if spec != "sqlite" else ""
        return SQLiteStore(path or None, data_dir, retention)
    raise ValueError(f"unknown store {spec!r}: use 'memory' or 'sqlite'")
