"""The unit tier: the core and the helpers alone.  No listening socket, no subprocess, no server
process: the hub runs on the memory backend with recording listeners (tests/unit/fakes.py), on the
event loop pytest-tornado gives each ``gen_test``; test_compat.py has Tornado serve one connection
over a socket pair.

``@pytest.mark.hub(presence_grace_s=0.3)`` overrides the hub's config for one test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends import open_backend
from rooms import Backend, Hub, HubConfig
from tests.unit.fakes import GRACE_S, ROOM, WatchedStore


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hub(**config): HubConfig values for the unit tests' hub")


@pytest.fixture
def hub(io_loop, request) -> Iterator[Hub]:
    """A started hub on the memory backend (its store watched: ``hub.store.drafts``)."""
    marker = request.node.get_closest_marker("hub")
    config = HubConfig(presence_grace_s=GRACE_S, rate_limit_per_s=0)
    for name, value in (marker.kwargs if marker else {}).items():
        setattr(config, name, value)
    memory = open_backend("memory")
    hub = Hub(Backend(WatchedStore(), memory.broker, memory.presence), config)
    io_loop.run_sync(hub.start)
    io_loop.run_sync(lambda: hub.create(ROOM))  # as POST /join does: reading a room nobody joined is 404
    yield hub
    if not hub.closing:
        io_loop.run_sync(hub.close)
