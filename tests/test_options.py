"""Options: OBROLAN_* environment variables, the command line winning, and the generated cookie secret."""

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

# option -> (environment variable, value as text, parsed setting name, parsed value)
OPTIONS = [
    ("--address", "OBROLAN_ADDRESS", "127.0.0.2", None, "127.0.0.2"),
    ("--data-dir", "OBROLAN_DATA_DIR", "/tmp/obrolan-x", "data_dir", "/tmp/obrolan-x"),
    ("--cookie-secret", "OBROLAN_COOKIE_SECRET", "s3cret", "cookie_secret", "s3cret"),
    ("--allowed-origins", "OBROLAN_ALLOWED_ORIGINS", "https://a.example, https://b.example/", "allowed_origins",
     ["https://a.example", "https://b.example"]),
    ("--buffer-size", "OBROLAN_BUFFER_SIZE", "77", "buffer_size", 77),
    ("--presence-grace", "OBROLAN_PRESENCE_GRACE", "2.5", "presence_grace", 2.5),
    ("--rate-limit", "OBROLAN_RATE_LIMIT", "0.5", "rate_limit", 0.5),
    ("--rate-burst", "OBROLAN_RATE_BURST", "7", "rate_burst", 7),
    ("--max-message-length", "OBROLAN_MAX_MESSAGE_LENGTH", "300", "max_message_length", 300),
    ("--max-backlog", "OBROLAN_MAX_BACKLOG", "4096", "max_backlog", 4096),
    ("--ping-interval", "OBROLAN_PING_INTERVAL", "3", "ping_interval", 3.0),
]


def test_defaults():
    settings, address, port = parse_settings(["chat.py"], {})
    assert (address, port) == ("127.0.0.1", 8888)
    assert settings.data_dir == "./data" and settings.cookie_secret == "" and settings.allowed_origins == []
    assert (settings.buffer_size, settings.presence_grace, settings.rate_limit, settings.rate_burst) == (
        1000, 10.0, 5.0, 10)
    assert (settings.max_message_length, settings.max_backlog, settings.ping_interval) == (2000, 1 << 20, 25.0)


@pytest.mark.parametrize(("flag", "env", "text", "attr", "value"), OPTIONS)
def test_each_option_from_the_environment_and_the_command_line(flag, env, text, attr, value):
    from_env, address, _ = parse_settings(["chat.py"], {env: text})
    from_argv, address2, _ = parse_settings(["chat.py", f"{flag}={text}"], {})
    if attr is None:
        assert address == address2 == value
    else:
        assert getattr(from_env, attr) == getattr(from_argv, attr) == value


def test_port_from_the_environment_and_the_command_line_wins():
    assert parse_settings(["chat.py"], {"OBROLAN_PORT": "9123"})[2] == 9123
    assert parse_settings(["chat.py", "--port=9124"], {"OBROLAN_PORT": "9123"})[2] == 9124


def test_command_line_wins_over_the_environment():
    env = {"OBROLAN_RATE_BURST": "7", "OBROLAN_RATE_LIMIT": "2", "UNRELATED": "x", "OBROLAN_RATE": "9"}
    settings, _, _ = parse_settings(["chat.py", "--rate-burst=3"], env)
    assert settings.rate_burst == 3  # the command line wins
    assert settings.rate_limit == 2.0  # the environment still fills the rest
    assert parse_settings(["chat.py", "--rate_burst=4"], env)[0].rate_burst == 4


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
        resp = await second.request("POST", "/rooms/restart/messages", token=user.token,
                                    json_body={"text": "sesudah restart"})
        assert resp.status == 201 and resp.json["user"] == "Budi"
    assert secret_file.read_text() == secret

    # another data dir means another secret: the token is refused there
    async with serving(Settings(data_dir=str(tmp_path / "other"), store="memory", cookie_secret="")) as other:
        resp = await other.request("GET", "/rooms/restart/users", token=user.token)
        assert resp.status == 401
    assert (tmp_path / "other" / "cookie_secret").read_text() != secret
