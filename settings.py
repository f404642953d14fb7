"""Every Obrolan option, once: name, type, default, unit, help, and which values make sense.

From the one table, :data:`OPTIONS`, come the Tornado option definitions
(:func:`define_options`), the ``OBROLAN_<OPTION>`` environment variables (the command
line wins), ``--help`` (:func:`help_text`), the defaults of :class:`Settings`, and
README's options table (:func:`readme_table`; ``python settings.py`` prints it).

A setting that cannot work stops the server before anything starts, with one line that
names the option and says what it wants: :class:`SettingError`, which ``chat.main``
prints (no traceback) before it exits with status 2.  The mistakes only found when the
server binds its port or creates its data folder are reported the same way
(:func:`listen_error`, :func:`prepare_data_dir`).
"""

from __future__ import annotations

import difflib
import errno
import ipaddress
import math
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TextIO, TypedDict, TypeVar
from urllib.parse import urlsplit

from tornado.options import Error as OptionsError
from tornado.options import OptionParser

from handlers.base import http_body_limit

T = TypeVar("T")

ENV_PREFIX = "OBROLAN_"
PORT_MAX = 65535
HOST_NAME_MAX_CHARS = 253
HELP_WIDTH_CHARS = 79
HELP_INDENT_CHARS = 8
COOKIE_SECRET_FILE = "cookie_secret"
COOKIE_SECRET_BYTES = 32  # random bytes, urlsafe-base64 encoded into the file
# Words a switch (--debug, --access-log) accepts, and what Tornado's parser is given for each.
SWITCH_WORDS = {"true": "true", "1": "true", "yes": "true", "on": "true", "t": "true",
                "false": "false", "0": "false", "no": "false", "off": "false", "f": "false"}


class SettingError(ValueError):
    """A setting that cannot work.  ``str()`` is one line that starts with the option's name."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option  # "--port"

    @property
    def line(self) -> str:
        """What ``chat.py`` prints on stderr before it exits with status 2."""
        return f"obrolan: cannot start: {self}"


# -- the rules a value must follow ------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """``ok(value)`` holds for the values that make sense; ``wants`` says which, for error messages."""

    ok: Callable[[Any], bool]
    wants: str


ANYTHING = Rule(lambda value: True, "")


def numbers(low: float, high: float | None = None, *, above: bool = False) -> Rule:
    """Finite numbers from ``low`` (more than ``low`` if ``above``) up to ``high``."""
    def ok(value: float) -> bool:
        return (math.isfinite(value) and (value > low if above else value >= low)
                and (high is None or value <= high))
    if high is not None:
        return Rule(ok, f"from {low:g} to {high:g}")
    return Rule(ok, f"more than {low:g}" if above else f"{low:g} or more")


def one_of(*choices: str) -> Rule:
    wants = ", ".join(choices[:-1]) + " or " + choices[-1] if len(choices) > 1 else choices[0]
    return Rule(lambda value: value in choices, wants)


def _is_store(value: str) -> bool:
    return value in ("memory", "sqlite") or value.startswith("sqlite:")


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _is_address(value: str) -> bool:
    if value == "":
        return True  # Tornado listens on every interface
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", value):  # looks like IPv4 but is not (999.1.1.1, 1.2.3)
        return False
    name = value.removesuffix(".")
    return len(name) <= HOST_NAME_MAX_CHARS and all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _is_redis_url(value: str) -> bool:
    if value == "":
        return True
    try:
        url = urlsplit(value)
        if url.scheme == "unix":
            return bool(url.path)
        return (url.scheme in ("redis", "rediss") and bool(url.hostname) and (url.port is None or url.port > 0)
                and re.fullmatch(r"/?[0-9]*", url.path) is not None)
    except ValueError:  # e.g. a port that is not a number
        return False


def split_origins(value: str) -> list[str]:
    return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]


def _is_origin(value: str) -> bool:
    try:
        url = urlsplit(value)
        url.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return False
    return "://" in value and bool(url.scheme and url.hostname) and not (url.path or url.query or url.fragment)


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option(Generic[T]):
    """One option.  ``help`` is Markdown (`code`, [links](url)); ``--help`` shows it as plain text."""

    name: str  # as in Settings and Tornado: "rate_burst" (--rate-burst, OBROLAN_RATE_BURST)
    type: type[T]
    default: T
    unit: str  # what a number counts ("seconds", "bytes"); "" for text and switches
    help: str
    rule: Rule = ANYTHING
    zero: str = ""  # what 0 means, when it means something special ("no limit")
    default_text: str = ""  # Markdown shown instead of the default value
    metavar: str = ""  # the value in --help's "--name=METAVAR"; "" picks one from the unit or type
    to_setting: Callable[[T], Any] | None = None  # the Settings value, when it is not the option's

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def wants(self) -> str:
        """What a value must be, completing "--port must be ...": "a whole number from 0 to 65535"."""
        if self.type is bool:
            return "true or false"
        if self.type not in (int, float):
            return self.rule.wants
        kind = ("a whole number" if self.type is int else "a number") + (f" of {self.unit}" if self.unit else "")
        wants = f"{kind} {self.rule.wants}" if self.rule.wants.startswith("from") else f"{kind}, {self.rule.wants}"
        return wants + (f" (0 = {self.zero})" if self.zero else "")

    @property
    def meaning(self) -> str:
        """The help, and what 0 means when the default does not already say (Markdown)."""
        return self.help + (f"; `0` means {self.zero}" if self.zero and self.default != 0 else "")

    @property
    def default_markdown(self) -> str:
        if self.default_text:
            return self.default_text
        if self.type is bool:
            return "on" if self.default else "off"
        if self.default == "":
            return "(none)"
        if self.zero and self.default == 0:
            return f"`0` {self.unit} ({self.zero})" if self.unit else f"`0` ({self.zero})"
        value = f"{self.default:g}" if isinstance(self.default, float) else str(self.default)
        return f"`{value}`" + (f" {self.unit}" if self.unit else "")

    @property
    def value_name(self) -> str:
        if self.metavar:
            return self.metavar
        if self.unit:
            return self.unit.split()[0].upper()
        return {int: "N", float: "NUMBER"}.get(self.type, "TEXT")

    def check(self, value: T, source: str, text: str) -> None:
        if not self.rule.ok(value):
            raise self.error(source, text)

    def error(self, source: str, text: str) -> SettingError:
        return SettingError(self.flag, f"{source} must be {self.wants}, not {text!r}")


PORT = Option("port", int, 8888, "", "port to listen on", numbers(0, PORT_MAX), metavar="PORT")
ADDRESS = Option("address", str, "127.0.0.1", "", "address to listen on (an IP address or a host name)",
                 Rule(_is_address, "an IP address or a host name"), metavar="ADDRESS")
DATA_DIR = Option("data_dir", str, "./data", "",
                  "folder where the generated cookie secret and the history database (`obrolan.sqlite3`) live",
                  Rule(bool, "a folder"), metavar="FOLDER")
STORE = Option("store", str, "sqlite", "",
               "history store: `sqlite` (the file `data-dir/obrolan.sqlite3`), `sqlite:PATH` (another file), "
               "or `memory` (history gone on restart)",
               Rule(_is_store, "sqlite, sqlite:PATH or memory"), metavar="STORE")
HISTORY_MAX_EVENTS = Option("history_max_events", int, 0, "events",
                            "how many events are kept per room; older ones are deleted, their ids never reused",
                            numbers(0), zero="no limit")
HISTORY_MAX_AGE = Option("history_max_age", float, 0.0, "seconds",
                         "how long an event is kept (applied at start and every 60 s)", numbers(0), zero="no limit")
COOKIE_SECRET = Option("cookie_secret", str, "", "", "signs sessions and bearer tokens",
                       default_text="generated into `data-dir/cookie_secret`", metavar="SECRET")
ALLOWED_ORIGINS = Option("allowed_origins", str, "", "",
                         "extra origins besides the server's own host that may open a WebSocket or an event stream, "
                         "comma-separated "
                         "(e.g. `https://chat.example`)",
                         Rule(lambda value: all(_is_origin(o) for o in split_origins(value)),
                              "comma-separated origins like https://chat.example (scheme://host[:port], no path)"),
                         metavar="ORIGINS", to_setting=split_origins)
BUFFER_SIZE = Option("buffer_size", int, 1000, "events", "how many of a room's latest events are kept in memory",
                     numbers(1))
PRESENCE_GRACE = Option("presence_grace", float, 10.0, "seconds",
                        "how long a user stays present after their last connection closes", numbers(0))
RATE_LIMIT = Option("rate_limit", float, 5.0, "messages per second", "how fast each session may send, over time",
                    numbers(0), zero="off", metavar="PER_SECOND")
RATE_BURST = Option("rate_burst", int, 10, "messages",
                    "messages a session may send at once before `--rate-limit` applies", numbers(1))
MAX_MESSAGE_LENGTH = Option("max_message_length", int, 2000, "characters", "the longest message", numbers(1))
MAX_BACKLOG = Option("max_backlog", int, 1 << 20, "bytes",
                     "how much unsent data a WebSocket or event stream may queue before it is ended "
                     "(close 1013; a stream's last item says `slow`)", numbers(1))
PING_INTERVAL = Option("ping_interval", float, 25.0, "seconds",
                       "time between WebSocket pings; a peer that stops answering is dropped", numbers(0),
                       zero="no pings")
HEARTBEAT_INTERVAL = Option("heartbeat_interval", float, 15.0, "seconds",
                            "time between keep-alive lines on an open event stream (`GET /rooms/<room>/events`), "
                            "so that proxies do not close it while the room is quiet", numbers(0),
                            zero="no keep-alive lines")
DEBUG = Option("debug", bool, False, "", "Tornado debug mode (reloads on code changes)")
EVENT_LOOP = Option("event_loop", str, "asyncio", "",
                    "event loop: `asyncio` or `uvloop` (faster; `pip install -e '.[fast]'`)",
                    one_of("asyncio", "uvloop"), metavar="LOOP")
ACCESS_LOG = Option("access_log", bool, False, "",
                    "log every HTTP request; by default only 4xx and 5xx answers are logged")
REDIS_URL = Option("redis_url", str, "", "",
                   "`redis://host:port/db`: keep history, ids, presence and fan-out in Redis so several processes "
                   "and machines serve the same rooms (replaces `--store`); see [docs/scaling.md](docs/scaling.md)",
                   Rule(_is_redis_url, "a Redis URL: redis://host:port/db, rediss://host:port/db or unix:///path"),
                   metavar="URL")
PROCESSES = Option("processes", int, 1, "", "worker processes sharing the port; more than 1 needs `--redis-url`",
                   numbers(0), zero="one per core", metavar="N")
PRESENCE_EXPIRY = Option("presence_expiry", float, 5.0, "seconds",
                         "with `--redis-url`: the users of a process that died leave after the grace period "
                         "plus at most this long", numbers(0, above=True))
TRUST_PROXY = Option("trust_proxy", bool, False, "",
                     "trust the `X-Forwarded-For`/`X-Real-IP` and `X-Forwarded-Proto`/`X-Scheme` headers "
                     "(Tornado's `xheaders`) for the client's address and whether it came over https (then the "
                     "session cookie is `Secure`); turn on only when every request comes through a proxy that "
                     "sets them, such as [deploy/nginx.conf](deploy/nginx.conf), since anyone can send them")
LOG_FORMAT = Option("log_format", str, "text", "",
                    "log output on stderr: `text` (one readable line) or `json` (one JSON object per line: time, "
                    "level, logger, message, and for requests method, path without the query, status, "
                    "duration_ms); see [docs/operations.md](docs/operations.md)",
                    one_of("text", "json"), metavar="FORMAT")
LOG_LEVEL = Option("log_level", str, "info", "",
                   "the least important log lines written: `debug` (also every request), `info`, `warning` or "
                   "`error`", one_of("debug", "info", "warning", "error"), metavar="LEVEL")
METRICS_PORT = Option("metrics_port", int, 0, "",
                      "port of a second listener, on `--address`, serving Prometheus metrics at `/metrics` (the "
                      "chat port never serves them); with `--processes`, the sum over the workers; see "
                      "[docs/operations.md](docs/operations.md)", numbers(0, PORT_MAX), zero="off", metavar="PORT")

OPTIONS: tuple[Option[Any], ...] = (
    PORT, ADDRESS, DATA_DIR, STORE, HISTORY_MAX_EVENTS, HISTORY_MAX_AGE, COOKIE_SECRET, ALLOWED_ORIGINS,
    BUFFER_SIZE, PRESENCE_GRACE, RATE_LIMIT, RATE_BURST, MAX_MESSAGE_LENGTH, MAX_BACKLOG, PING_INTERVAL,
    HEARTBEAT_INTERVAL, DEBUG, EVENT_LOOP, ACCESS_LOG, REDIS_URL, PROCESSES, PRESENCE_EXPIRY, TRUST_PROXY,
    LOG_FORMAT, LOG_LEVEL, METRICS_PORT,
)
BY_FLAG: dict[str, Option[Any]] = {option.flag: option for option in OPTIONS}
LISTEN_OPTIONS = ("port", "address")  # returned beside Settings: make_app does not read them


@dataclass
class Settings:
    """Everything make_app needs; built from options or directly by tests.  Defaults: the table."""

    data_dir: str = DATA_DIR.default
    store: str = STORE.default
    history_max_events: int = HISTORY_MAX_EVENTS.default
    history_max_age: float = HISTORY_MAX_AGE.default  # seconds
    cookie_secret: str = COOKIE_SECRET.default
    allowed_origins: list[str] = field(default_factory=lambda: split_origins(ALLOWED_ORIGINS.default))
    buffer_size: int = BUFFER_SIZE.default  # events per room
    presence_grace: float = PRESENCE_GRACE.default  # seconds
    rate_limit: float = RATE_LIMIT.default  # messages per second per session
    rate_burst: int = RATE_BURST.default  # messages
    max_message_length: int = MAX_MESSAGE_LENGTH.default  # characters
    max_backlog: int = MAX_BACKLOG.default  # bytes
    ping_interval: float = PING_INTERVAL.default  # seconds
    heartbeat_interval: float = HEARTBEAT_INTERVAL.default  # seconds
    debug: bool = DEBUG.default
    event_loop: str = EVENT_LOOP.default  # read by main(), not by make_app
    access_log: bool = ACCESS_LOG.default
    redis_url: str = REDIS_URL.default
    processes: int = PROCESSES.default
    presence_expiry: float = PRESENCE_EXPIRY.default  # seconds
    trust_proxy: bool = TRUST_PROXY.default  # read by serve() (HTTPServer xheaders), not by make_app
    log_format: str = LOG_FORMAT.default  # read by main(), not by make_app
    log_level: str = LOG_LEVEL.default  # read by main(), not by make_app
    metrics_port: int = METRICS_PORT.default  # 0: off


# -- Tornado definitions, environment and command line ---------------------------------------


class _Parser(OptionParser):
    """Tornado's parser, whose ``--help`` is :func:`help_text` on stdout."""

    def print_help(self, file: TextIO | None = None) -> None:
        (file or sys.stdout).write(help_text())


def define_options(parser: OptionParser) -> None:
    for option in OPTIONS:
        parser.define(option.name, default=option.default, type=option.type, help=plain(option.meaning),
                      metavar=None if option.type is bool else option.value_name)


def _set(parser: OptionParser, option: Option[Any], source: str, text: str) -> None:
    """Parse ``text`` into ``option`` with Tornado's parser; a value it cannot read is a SettingError."""
    if option.type is bool:
        word = SWITCH_WORDS.get(text.strip().lower())
        if word is None:
            raise option.error(source, text)
        text = word
    try:
        parser.parse_command_line(["chat.py", f"--{option.name}={text}"], final=False)
    except (ValueError, OptionsError):
        raise option.error(source, text) from None


def _unknown(name: str) -> SettingError:
    close = difflib.get_close_matches(f"--{name}", BY_FLAG, n=1)
    hint = f"did you mean {close[0]}?" if close else "python chat.py --help lists them"
    return SettingError(f"--{name}", f"--{name} is not an option ({hint})")


def parse_settings(argv: list[str] | None = None, environ: Mapping[str, str] | None = None
                   ) -> tuple[Settings, str, int]:
    """Options from ``OBROLAN_*`` variables, then the command line (which wins): settings, address, port.

    ``--help`` (or ``-h``) prints :func:`help_text` and exits with status 0; a value that cannot
    work raises :class:`SettingError`.
    """
    parser = _Parser()
    define_options(parser)
    environ = os.environ if environ is None else environ
    argv = sys.argv if argv is None else argv
    chosen: dict[str, tuple[str, str]] = {}  # option name -> (where it was set, its text); the command line wins
    for option in OPTIONS:
        if option.env in environ:
            chosen[option.name] = (f"{option.env} ({option.flag})", environ[option.env])
    for arg in argv[1:]:
        if arg == "--":
            continue  # nothing but options follow either way
        if not arg.startswith("-"):
            raise SettingError(arg, f"{arg!r} is not an option: options look like --name=value "
                                    "(python chat.py --help lists them)")
        name, equals, text = arg.lstrip("-").partition("=")
        if name in ("h", "help"):
            parser.print_help()
            raise SystemExit(0)
        named = BY_FLAG.get("--" + name.replace("_", "-"))
        if named is None:
            raise _unknown(name)
        if not equals:
            if named.type is not bool:
                raise SettingError(named.flag, f"{named.flag} needs a value: {named.flag}={named.value_name}")
            text = "true"
        chosen[named.name] = (named.flag, text)
    for option in OPTIONS:
        if option.name in chosen:
            _set(parser, option, *chosen[option.name])
    values = parser.as_dict()
    for option in OPTIONS:
        source, text = chosen.get(option.name, (option.flag, str(option.default)))
        option.check(values[option.name], source, text)
    settings = Settings(**{
        option.name: option.to_setting(values[option.name]) if option.to_setting else values[option.name]
        for option in OPTIONS if option.name not in LISTEN_OPTIONS})
    return settings, values["address"], values["port"]


def check_processes(settings: Settings, workers: int) -> None:
    """Settings that each make sense but not together."""
    if workers > 1 and not settings.redis_url:
        raise SettingError(PROCESSES.flag, f"--processes={settings.processes} needs --redis-url: separate processes "
                                           "share rooms, ids and presence only through Redis")


def _uses_data_dir_for_history(settings: Settings) -> bool:
    return not settings.redis_url and (
        settings.store == "sqlite"
        or (settings.store.startswith("sqlite:") and not settings.store.removeprefix("sqlite:").removeprefix("//")))


def _data_dir_error(exc: OSError, data_dir: str, where: str | None = None) -> SettingError:
    """``where``: the file or folder to name instead of the one in ``exc``."""
    if isinstance(exc, FileExistsError):
        problem = f"{data_dir!r} is a file"
    elif isinstance(exc, NotADirectoryError):
        problem = f"a part of {data_dir!r} is a file"
    else:
        problem = f"{where or exc.filename or data_dir}: {exc.strerror or exc}"
    return SettingError(DATA_DIR.flag, f"{DATA_DIR.flag} must be a folder the server can write to; {problem}")


def load_cookie_secret(settings: Settings) -> str:
    """The given secret, or one generated once and kept in data-dir so sessions survive restarts."""
    if settings.cookie_secret:
        return settings.cookie_secret
    path = Path(settings.data_dir) / COOKIE_SECRET_FILE
    try:
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(COOKIE_SECRET_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
    except OSError as exc:
        raise _data_dir_error(exc, settings.data_dir) from None
    return secret


def prepare_data_dir(settings: Settings) -> str:
    """Create data-dir if the server writes there (and check it can); the cookie secret.

    Called once before the server starts (and before workers fork, so they do not race to
    create the secret).  A data-dir that is a file or cannot be written is a SettingError.
    """
    if _uses_data_dir_for_history(settings):
        try:
            Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=settings.data_dir):
                pass  # the database, its journal and its WAL are created here
        except OSError as exc:
            raise _data_dir_error(exc, settings.data_dir, settings.data_dir) from None
    return load_cookie_secret(settings)


def prepare_metrics_dir(settings: Settings) -> Path:
    """``<data-dir>/metrics-<port>``, emptied: where the workers of ``--processes`` write their metrics.

    Called after the metrics port was bound, so no other running server uses this folder; what a
    previous run left there (its counts, its dead workers' gauges) must not be added to ours."""
    path = Path(settings.data_dir) / f"metrics-{settings.metrics_port}"
    try:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    except OSError as exc:
        raise _data_dir_error(exc, settings.data_dir, str(path)) from None
    return path


def listen_error(exc: OSError, address: str, port: int, option: Option[Any] = PORT) -> SettingError:
    """What went wrong binding ``address:port``, said as a wrong --port (or ``option``) or --address."""
    if isinstance(exc, socket.gaierror):
        return SettingError(ADDRESS.flag, f"{ADDRESS.flag} must be an address of this machine; "
                                          f"{address!r} cannot be resolved ({exc.strerror})")
    if exc.errno == errno.EADDRINUSE:
        return SettingError(option.flag, f"{option.flag} must be a free port; {port} is already in use on {address!r} "
                                       "(another server is listening there)")
    if exc.errno == errno.EACCES:
        return SettingError(option.flag, f"{option.flag} must be 1024 or more, or the server must run with the right "
                                       f"to bind low ports; {port} was refused ({exc.strerror})")
    if exc.errno == errno.EADDRNOTAVAIL:
        return SettingError(ADDRESS.flag, f"{ADDRESS.flag} must be an address of this machine; {address!r} is not")
    return SettingError(ADDRESS.flag, f"{ADDRESS.flag} and {PORT.flag} must be where this machine can listen; "
                                      f"{address!r} port {port}: {exc.strerror or exc}")


# -- HubConfig and AppConfig keyword values --------------------------------------------------


class HubValues(TypedDict):
    buffer_size: int
    presence_grace_s: float
    rate_limit_per_s: float
    rate_burst: int
    max_message_chars: int


class AppValues(TypedDict):
    allowed_origins: frozenset[str]
    max_backlog_bytes: int
    http_body_max_bytes: int


def hub_config_values(settings: Settings) -> HubValues:
    """Keyword values for ``rooms.HubConfig``."""
    # The buffer caches what is kept: never more events than the retention keeps.
    buffer_size = min(settings.buffer_size, settings.history_max_events or settings.buffer_size)
    return HubValues(buffer_size=buffer_size, presence_grace_s=settings.presence_grace,
                     rate_limit_per_s=settings.rate_limit, rate_burst=settings.rate_burst,
                     max_message_chars=settings.max_message_length)


def app_config_values(settings: Settings) -> AppValues:
    """Keyword values for ``handlers.AppConfig`` (besides the cookie secret and the pinger)."""
    return AppValues(allowed_origins=frozenset(settings.allowed_origins), max_backlog_bytes=settings.max_backlog,
                     http_body_max_bytes=http_body_limit(settings.max_message_length))


# -- documentation ---------------------------------------------------------------------------


def plain(markdown: str) -> str:
    """Markdown's `code` and [links](url) as plain text."""
    def link(match: re.Match[str]) -> str:
        text, url = match[1], match[2]
        return text if text == url else f"{text} ({url})"
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", link, markdown).replace("`", "")


HELP_INTRO = (f"Obrolan, real-time room chat. Every option can also be set by an environment variable "
              f"{ENV_PREFIX}<OPTION> in upper snake case (--rate-burst=20 or {ENV_PREFIX}RATE_BURST=20); "
              "the command line wins.")


def help_text() -> str:
    """What ``python chat.py --help`` prints."""
    indent = " " * HELP_INDENT_CHARS
    lines = ["Usage: python chat.py [--option=value ...]", "",
             *textwrap.wrap(HELP_INTRO, HELP_WIDTH_CHARS), "", "Options:"]
    for option in OPTIONS:
        value = "[=true|false]" if option.type is bool else f"={option.value_name}"
        lines.append(f"  {option.flag}{value}")
        lines += textwrap.wrap(plain(option.meaning), HELP_WIDTH_CHARS, initial_indent=indent,
                               subsequent_indent=indent)
        lines += textwrap.wrap(f"default: {plain(option.default_markdown)}; env: {option.env}", HELP_WIDTH_CHARS,
                               initial_indent=indent, subsequent_indent=indent)
    lines += ["  --help", f"{indent}show this help and exit", ""]
    return "\n".join(lines)


def readme_table() -> str:
    """README's options table, one row per option (a test keeps README's copy equal to this)."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    rows += [f"| `{option.flag}` | {option.default_markdown} | {option.meaning} |" for option in OPTIONS]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(readme_table())
