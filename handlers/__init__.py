"""Tornado handlers: pages, the JSON API, the WebSocket and the event stream."""

from __future__ import annotations

from typing import Any

from rooms import Hub

from .api import HealthHandler, LeaveHandler, MessagesHandler, ReadyHandler, RoomsHandler, TypingHandler, UsersHandler
from .base import AppConfig, NotFoundHandler
from .events import EventsHandler
from .pages import JoinHandler, JoinPage, RoomPage
from .ws import RoomSocket

ROOM = r"/rooms/([^/]+)"


def routes(hub: Hub, config: AppConfig) -> list[tuple[str, type, dict[str, Any]]]:
    deps = {"hub": hub, "config": config}
    return [
        (r"/", JoinPage, deps),
        (r"/join", JoinHandler, deps),
        (r"/rooms", RoomsHandler, deps),
        (ROOM, RoomPage, deps),
        (ROOM + r"/ws", RoomSocket, deps),
        (ROOM + r"/messages", MessagesHandler, deps),
        (ROOM + r"/events", EventsHandler, deps),
        (ROOM + r"/typing", TypingHandler, deps),
        (ROOM + r"/leave", LeaveHandler, deps),
        (ROOM + r"/users", UsersHandler, deps),
        (r"/healthz", HealthHandler, deps),
        (r"/readyz", ReadyHandler, deps),
    ]


__all__ = ["AppConfig", "NotFoundHandler", "routes"]
