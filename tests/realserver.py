"""The in-process server with the HTTPServer options ``chat.serve`` uses.

pytest-tornado's own ``http_server`` fixture builds ``HTTPServer(app)`` with Tornado's defaults
(no ``xheaders``, a 100 MB body limit).  A test module that checks what those options decide
imports this fixture, which overrides it::

    from tests.realserver import http_server  # noqa: F401 (a fixture)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tornado.httpserver
import tornado.web

from chat import Settings, server_options


@pytest.fixture
def http_server(request: pytest.FixtureRequest, io_loop, _unused_port, app: tornado.web.Application,
                settings: Settings) -> Iterator[tornado.httpserver.HTTPServer]:
    server = tornado.httpserver.HTTPServer(app, **server_options(settings))
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=request.config.option.async_test_timeout)
