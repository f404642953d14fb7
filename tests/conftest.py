"""Fixtures: the real Obrolan app served by pytest-tornado on a free port.

Override settings for one test with ``@pytest.mark.settings(presence_grace=0.2)``.
"""

from __future__ import annotations

import dataclasses

import pytest

from chat import Settings, make_app
from rooms.ratelimit import TokenBucketLimiter
from tests.chatclient import Api


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**overrides): override chat Settings for one test")


@pytest.fixture
def settings(tmp_path, request) -> Settings:
    base = Settings(data_dir=str(tmp_path / "data"), store="memory", cookie_secret="test-secret",
                    presence_grace=0.3)
    marker = request.node.get_closest_marker("settings")
    return dataclasses.replace(base, **marker.kwargs) if marker else base


@pytest.fixture
def app(io_loop, settings):
    application = make_app(settings)
    io_loop.run_sync(application.hub.start)
    yield application
    io_loop.run_sync(application.hub.close)


@pytest.fixture
def chat_url(http_server, http_port) -> str:
    """The running server's base URL (named so it does not clash with base_url fixtures)."""
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture
def api(chat_url):
    client = Api(chat_url)
    yield client
    client.close()


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
