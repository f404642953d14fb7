"""Options: OBROLAN_* environment variables, the command line winning, the generated cookie secret,
the one table in settings.py, and the one-line refusal of settings that cannot work."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import tornado.httpserver
import tornado.testing
from tornado.options import OptionParser

import settings as table
from chat import Settings, make_app, parse_settings
from handlers import AppConfig
from rooms import HubConfig
from settings import SettingError
from tests.chatclient import Api

ROOT = Path(__file__).resolve().parent.parent
REFUSAL_TIMEOUT_S = 30.0  # a refused start exits at once; this only bounds a hang on a busy machine
# Root writes to a 0500 folder anyway (CAP_DAC_OVERRIDE): without that capability it cannot.
ROOT_IGNORES_FILE_MODES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []

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


# -- the one table ------------------------------------------------------------------------------


def test_settings_defaults_are_the_tables():
    settings, address, port = parse_settings(["chat.py"], {})
    assert settings == Settings()
    assert (address, port) == (table.ADDRESS.default, table.PORT.default)
    assert [f.name for f in dataclasses.fields(Settings)] == [
        o.name for o in table.OPTIONS if o.name not in table.LISTEN_OPTIONS]
    for option in table.OPTIONS:
        if option.name not in table.LISTEN_OPTIONS and option.to_setting is None:
            assert getattr(Settings(), option.name) == option.default, option.name


def test_tornado_definitions_come_from_the_table():
    parser = OptionParser()
    table.define_options(parser)
    defined = {name: value for name, value in parser.as_dict().items() if name != "help"}
    assert defined == {option.name: option.default for option in table.OPTIONS}
    assert all(type(defined[o.name]) is o.type for o in table.OPTIONS)


def test_hub_and_app_config_defaults_agree_with_the_table():
    """rooms/ and handlers/ keep their own defaults; they must be the table's."""
    assert HubConfig(**table.hub_config_values(Settings())) == HubConfig()
    for name, value in table.app_config_values(Settings()).items():
        assert getattr(AppConfig("x"), name) == value, name


def test_every_option_has_its_environment_variable():
    for option in table.OPTIONS:
        text = "true" if option.type is bool else str(option.default)
        from_env = parse_settings(["chat.py"], {option.env: text})
        assert from_env == parse_settings(["chat.py", f"{option.flag}={text}"], {})


@pytest.mark.parametrize(("word", "value"), [("", True), ("=true", True), ("=1", True), ("=yes", True), ("=on", True),
                                             ("=false", False), ("=0", False), ("=no", False), ("=OFF", False)])
def test_switches_take_true_or_false(word, value):
    assert parse_settings(["chat.py", f"--debug{word}"], {})[0].debug is value
    assert parse_settings(["chat.py"], {"OBROLAN_ACCESS_LOG": word.lstrip("=") or "true"})[0].access_log is value


@pytest.mark.parametrize("arg", [
    "--port=abc", "--port=74640", "--port=-1", "--port=", "--address=999.1.1.1", "--address=1.2.3", "--address=a b",
    "--address=[::1]", "--data-dir=", "--store=postgres", "--store=sqlite3", "--history-max-events=-1",
    "--history-max-age=-5", "--history-max-age=inf", "--history-max-age=nan", "--allowed-origins=chat.example",
    "--allowed-origins=https://a.example/path", "--buffer-size=0", "--buffer-size=1.5", "--presence-grace=-1",
    "--rate-limit=-0.5", "--rate-burst=0", "--max-message-length=0", "--max-backlog=0", "--ping-interval=-3",
    "--debug=maybe", "--event-loop=twisted", "--access-log=2", "--redis-url=http://x", "--redis-url=redis://",
    "--redis-url=redis://h:99999/0", "--redis-url=redis://h:6379/abc", "--processes=-1", "--presence-expiry=0",
    "--presence-expiry=-1",
])
def test_a_value_that_cannot_work_is_refused_naming_the_option(arg):
    flag = arg.partition("=")[0]
    with pytest.raises(SettingError) as refused:
        parse_settings(["chat.py", arg], {})
    assert refused.value.option == flag and str(refused.value).startswith(f"{flag} must be ")
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("arg", [
    "--port=0", "--port=65535", "--address=", "--address=::1", "--address=localhost", "--address=chat.example.",
    "--store=memory", "--store=sqlite:/tmp/x.sqlite3", "--history-max-age=0.5", "--rate-limit=0", "--processes=0",
    "--ping-interval=0", "--presence-grace=0", "--allowed-origins=https://a.example, http://b.example:8080/",
    "--redis-url=redis://127.0.0.1:6379/0", "--redis-url=rediss://:pw@redis.example", "--redis-url=unix:///r.sock",
    "--event-loop=uvloop", "--debug", "--cookie-secret=", "-port=9000", "--rate_burst=3",
])
def test_values_that_make_sense_are_taken(arg):
    parse_settings(["chat.py", arg], {})


def test_the_environment_is_named_when_its_value_cannot_work():
    with pytest.raises(SettingError, match=r"^OBROLAN_PORT \(--port\) must be a whole number from 0 to 65535, "
                                           r"not 'x'$"):
        parse_settings(["chat.py"], {"OBROLAN_PORT": "x"})
    # the command line wins, so a bad variable it overrides is no longer wrong
    assert parse_settings(["chat.py", "--port=9000"], {"OBROLAN_PORT": "x"})[2] == 9000


def test_unknown_options_and_arguments_are_refused():
    with pytest.raises(SettingError, match=r"^--prot is not an option \(did you mean --port\?\)$"):
        parse_settings(["chat.py", "--prot=1"], {})
    with pytest.raises(SettingError, match=r"^--port needs a value"):
        parse_settings(["chat.py", "--port", "9000"], {})
    with pytest.raises(SettingError, match=r"^'serve' is not an option"):
        parse_settings(["chat.py", "serve"], {})


def test_help_says_each_default_once_and_names_the_variables():
    text = table.help_text()
    assert "(default" not in text and "OBROLAN_<OPTION>" in text
    blocks = text.split("\n  --")[1:]
    assert [block.split("=")[0].split("[")[0].split("\n")[0] for block in blocks] == [
        o.flag[2:] for o in table.OPTIONS] + ["help"]
    for option, block in zip(table.OPTIONS, blocks, strict=False):
        assert block.count("default:") == 1 and option.env in block, block
    assert max(len(line) for line in text.splitlines()) <= table.HELP_WIDTH_CHARS


# -- real processes: one line on stderr, status 2, nothing started --------------------------------


def run_chat(*args: str, env: dict[str, str] | None = None, wrapper: list[str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OBROLAN_")}
    clean["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([*(wrapper or []), sys.executable, str(ROOT / "chat.py"), *args], cwd=ROOT,
                          env={**clean, **(env or {})}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=REFUSAL_TIMEOUT_S)


def assert_refused(done: subprocess.CompletedProcess[str], flag: str) -> str:
    """Status 2, nothing on stdout, and exactly one line on stderr that names ``flag``."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert flag in lines[0] and lines[0].startswith("obrolan: cannot start: "), lines[0]
    assert (done.returncode, done.stdout) == (2, "")
    return lines[0]


@pytest.mark.parametrize(("arg", "says"), [
    ("--port=abc", "--port must be a whole number from 0 to 65535, not 'abc'"),
    ("--port=74640", "--port must be a whole number from 0 to 65535, not '74640'"),
    ("--store=postgres", "--store must be sqlite, sqlite:PATH or memory, not 'postgres'"),
    ("--redis-url=http://x", "--redis-url must be a Redis URL"),
    ("--address=999.1.1.1", "--address must be an IP address or a host name, not '999.1.1.1'"),
    ("--history-max-age=-5", "--history-max-age must be a number of seconds, 0 or more (0 = no limit), not '-5'"),
    ("--history-max-events=-1", "--history-max-events must be a whole number of events, 0 or more"),
    ("--presence-grace=-2", "--presence-grace must be a number of seconds, 0 or more, not '-2'"),
    ("--buffer-size=0", "--buffer-size must be a whole number of events, 1 or more, not '0'"),
    ("--prot=9000", "--prot is not an option (did you mean --port?)"),
])
def test_a_start_with_a_value_that_cannot_work_says_so_in_one_line(tmp_path, arg, says):
    data_dir = tmp_path / "data"
    line = assert_refused(run_chat(f"--data-dir={data_dir}", arg), arg.partition("=")[0])
    assert says in line
    assert not data_dir.exists()  # refused before anything was created


def test_a_bad_environment_variable_is_named(tmp_path):
    line = assert_refused(run_chat(f"--data-dir={tmp_path}", env={"OBROLAN_PORT": "abc"}), "--port")
    assert "OBROLAN_PORT" in line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_already_in_use_is_one_line(tmp_path, busy_port):
    line = assert_refused(run_chat(f"--data-dir={tmp_path}", "--store=memory", "--address=127.0.0.1",
                                   f"--port={busy_port}"), "--port")
    assert f"{busy_port} is already in use" in line


@pytest.mark.parametrize("store", ["--store=memory", "--store=sqlite"])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path, store):
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    line = assert_refused(run_chat(f"--data-dir={afile}", store, "--port=0"), "--data-dir")
    assert "is a file" in line


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root without setpriv writes anyway")
@pytest.mark.parametrize("args", [["--store=memory"], ["--store=sqlite", "--cookie-secret=s"]],
                         ids=["cookie-secret", "database"])
def test_a_data_dir_that_cannot_be_written_is_one_line(tmp_path, args):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        line = assert_refused(run_chat(f"--data-dir={locked}", *args, "--port=0",
                                       wrapper=ROOT_IGNORES_FILE_MODES), "--data-dir")
    finally:
        locked.chmod(0o700)
    assert "Permission denied" in line
    assert list(locked.iterdir()) == []


def test_help_goes_to_stdout_and_names_the_variables():
    done = run_chat("--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == table.help_text()
    assert run_chat("-h").stdout == done.stdout
