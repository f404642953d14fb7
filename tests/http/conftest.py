"""The http tier: the real app served in-process by pytest-tornado (``api``, ``chat_url`` and
``settings`` are in tests/conftest.py, shared with the contract tier), real HTTP and WebSocket clients."""

from __future__ import annotations

import pytest

from rooms.ratelimit import TokenBucketLimiter


@pytest.fixture
def hub(app):
    return app.hub


@pytest.fixture
def rate_clock_stopped(hub) -> None:
    """The hub's rate limiter, same rate and burst, on a clock that stands still.

    A test that spends its burst and expects the next send refused would otherwise pass
    only if the machine gets through it before a token refills (1 s at rate_limit=1).
    """
    limiter = hub.limiter
    hub.limiter = TokenBucketLimiter(limiter.rate_per_s, limiter.burst, clock=lambda: 0.0)
