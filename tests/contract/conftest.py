"""The contract tier: the store and broker contract suites, each test run against every implementation."""

from __future__ import annotations

import pytest

from tests.redis_helpers import RedisServer


@pytest.fixture(scope="module")
def contract_redis(tmp_path_factory):
    """A redis-server for the Redis implementation, one per test module; each test flushes it."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
