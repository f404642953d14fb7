"""Options, without starting anything: OBROLAN_* environment variables, the command line winning,
the one table in settings.py, and the refusal of settings that cannot work, naming the option.

The options taking effect in a served app are in tests/http/test_options.py; a real start refused
in one line on stderr, in tests/process/test_options.py."""

from __future__ import annotations

import dataclasses

import pytest
from tornado.options import OptionParser

import settings as table
from chat import Settings, make_app, parse_settings
from handlers import AppConfig
from rooms import HubConfig
from settings import SettingError

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



def test_store_and_retention_options():
    defaults, _, _ = parse_settings(["chat.py"], {})
    assert (defaults.store, defaults.history_max_events, defaults.history_max_age) == ("sqlite", 0, 0.0)
    env = {"OBROLAN_STORE": "memory", "OBROLAN_HISTORY_MAX_EVENTS": "500", "OBROLAN_HISTORY_MAX_AGE": "86400"}
    from_env, _, _ = parse_settings(["chat.py"], env)
    assert (from_env.store, from_env.history_max_events, from_env.history_max_age) == ("memory", 500, 86400.0)
    argv = ["chat.py", "--store=sqlite:/tmp/x.sqlite3", "--history-max-events=9", "--history-max-age=60"]
    from_argv, _, _ = parse_settings(argv, env)
    assert (from_argv.store, from_argv.history_max_events, from_argv.history_max_age) == (
        "sqlite:/tmp/x.sqlite3", 9, 60.0)
    for bad in ({"history_max_events": -1}, {"history_max_age": -0.5}):
        with pytest.raises(ValueError, match="no limit"):
            make_app(dataclasses.replace(defaults, store="memory", cookie_secret="x", **bad))


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


def test_metrics_port_works_with_several_processes(tmp_path):
    settings, _, _ = parse_settings(["chat.py", "--metrics-port=9100", "--processes=2", "--redis-url=redis://h/0",
                                     f"--data-dir={tmp_path}"], environ={})
    table.check_processes(settings, 2)  # the workers' figures are summed (tests/process/test_metrics_workers.py)
    left = tmp_path / "metrics-9100" / "counter_123.db"  # a previous run's counts must not add to ours
    left.parent.mkdir()
    left.write_bytes(b"old")
    assert table.prepare_metrics_dir(settings) == left.parent and not any(left.parent.iterdir())


@pytest.mark.parametrize("arg", ["--log-format=xml", "--log-level=verbose", "--metrics-port=70000"])
def test_log_and_metrics_values_that_cannot_work_are_refused(arg):
    with pytest.raises(SettingError) as caught:
        parse_settings(["chat.py", arg], environ={})
    assert caught.value.option == arg.partition("=")[0]


def test_the_body_limit_leaves_room_for_the_longest_message_however_it_is_written():
    """12 bytes a character (a form's %XX of 4 UTF-8 bytes; JSON's escaped surrogate pair) and 4 KiB
    for the rest, never under 16 KiB: the limit follows --max-message-length."""
    settings = Settings()
    assert table.app_config_values(settings)["http_body_max_bytes"] == 2000 * 12 + 4096
    settings.max_message_length = 10
    assert table.app_config_values(settings)["http_body_max_bytes"] == 16 * 1024
    settings.max_message_length = 10_000
    assert table.app_config_values(settings)["http_body_max_bytes"] == 10_000 * 12 + 4096
