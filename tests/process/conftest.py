"""The process tier: real ``python chat.py`` processes, redis-server and nginx (helpers in
tests/servers.py and tests/redis_helpers.py)."""

from __future__ import annotations

import pytest

from tests.redis_helpers import RedisServer


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    """A redis-server shared by the tests of one module."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
