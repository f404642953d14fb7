"""Options taking effect in the real app, served in-process: the rate burst from the environment,
the cookie secret generated into the data dir and reused."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import tornado.httpserver
import tornado.testing

from chat import Settings, make_app, parse_settings
from tests.chatclient import Api


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Api]:
    """The real app on a free port for the length of the block."""
    app = make_app(settings)
    await app.hub.start()
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    client = Api(f"http://127.0.0.1:{port}")
    try:
        yield client
    finally:
        client.close()
        server.stop()
        await server.close_all_connections()
        await app.hub.close()


@pytest.mark.gen_test
async def test_rate_burst_from_the_environment_takes_effect(tmp_path):
    # One token per 1000 s: none comes back while the test runs, however busy the machine.
    settings, _, _ = parse_settings(["chat.py", f"--data-dir={tmp_path}", "--store=memory"],
                                    {"OBROLAN_RATE_BURST": "2", "OBROLAN_RATE_LIMIT": "0.001"})
    async with serving(settings) as api:
        user = await api.join("Budi", "burst")
        assert [(await user.post(f"m{i}")).status for i in range(3)] == [201, 201, 429]


@pytest.mark.gen_test
async def test_cookie_secret_is_generated_into_data_dir_and_reused(tmp_path):
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=str(data_dir), store="memory", cookie_secret="")
    async with serving(settings) as first:
        user = await first.join("Budi", "restart")
        assert (await user.post("sebelum restart")).status == 201
    secret_file = Path(data_dir) / "cookie_secret"
    secret = secret_file.read_text()
    assert len(secret.strip()) >= 32
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600

    # a new server with the same data dir: the session survives the restart
    async with serving(Settings(data_dir=str(data_dir), store="memory", cookie_secret="")) as second:
        await second.join("Ani", "restart")  # the memory store forgot the room: a join makes it again
        resp = await second.request("POST", "/rooms/restart/messages", token=user.token,
                                    json_body={"text": "sesudah restart"})
        assert resp.status == 201 and resp.json["user"] == "Budi"
    assert secret_file.read_text() == secret

    # another data dir means another secret: the token is refused there
    async with serving(Settings(data_dir=str(tmp_path / "other"), store="memory", cookie_secret="")) as other:
        resp = await other.request("GET", "/rooms/restart/users", token=user.token)
        assert resp.status == 401
    assert (tmp_path / "other" / "cookie_secret").read_text() != secret
