"""Obrolan's room core: hub, presence, per-room buffer, rate limits, and the ports backends plug into.

Nothing in this package imports Tornado, sqlite3, redis, ``backends`` or ``handlers``
(tests/unit/test_import_graph.py keeps it so).
"""

from __future__ import annotations

from .errors import ChatError
from .hub import Hub, HubConfig
from .models import Event, Retention, Session
from .ports import Backend, Broker, Core, Ending, Listener, PresenceStore, Store

__all__ = ["Backend", "Broker", "ChatError", "Core", "Ending", "Event", "Hub", "HubConfig", "Listener",
           "PresenceStore", "Retention", "Session", "Store"]
