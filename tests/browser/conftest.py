"""Fixtures for the real-browser tests (see harness.py for how they run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import ChatServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "server(**options): chat.py options for the browser test's server")


@pytest.fixture
def chat_server(tmp_path: Path, request: pytest.FixtureRequest):
    marker = request.node.get_closest_marker("server")
    server = ChatServer(tmp_path / "data", **(marker.kwargs if marker else {}))
    server.start()
    yield server
    server.stop()
