"""Obrolan: a real-time room chat server on Tornado.

Options come from the command line or from ``OBROLAN_<OPTION>`` environment
variables (``--rate-burst`` <-> ``OBROLAN_RATE_BURST``); the command line wins.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tornado.httpserver
import tornado.locale
import tornado.netutil
import tornado.process
import tornado.web
from tornado.options import OptionParser

from backends import open_backend
from handlers import AppConfig, NotFoundHandler, routes
from handlers.base import log_failed_request
from handlers.pinger import Pinger
from handlers.ws import WS_MAX_FRAME_BYTES
from rooms import ChatError, Hub, HubConfig, Retention

log = logging.getLogger("obrolan")

HERE = Path(__file__).resolve().parent
ENV_PREFIX = "OBROLAN_"
SHUTDOWN_GRACE_S = 4.0  # SIGTERM to exit stays under 5 s
HTTP_SERVER_MAX_BODY_BYTES = 1 << 20  # Tornado refuses larger bodies outright (400, closed)


def define_options(parser: OptionParser) -> None:
    d = parser.define
    d("port", default=8888, type=int, help="port to listen on")
    d("address", default="127.0.0.1", help="address to listen on")
    d("data_dir", default="./data", help="folder for the cookie secret and the history database")
    d("store", default="sqlite", help="history store: sqlite[:path] (default file data-dir/obrolan.sqlite3) "
      "or memory (nothing kept across restarts)")
    d("history_max_events", default=0, type=int, help="events kept per room (0 = no limit)")
    d("history_max_age", default=0.0, type=float, help="seconds an event is kept (0 = no limit)")
    d("cookie_secret", default="", help="secret that signs sessions (default: generated into data-dir)")
    d("allowed_origins", default="", help="comma-separated extra WebSocket origins, e.g. https://chat.example")
    d("buffer_size", default=1000, type=int, help="events kept in memory per room")
    d("presence_grace", default=10.0, type=float, help="seconds before a disconnected user leaves")
    d("rate_limit", default=5.0, type=float, help="messages per second per session (0 = off)")
    d("rate_burst", default=10, type=int, help="burst of messages per session")
    d("max_message_length", default=2000, type=int, help="characters per message")
    d("max_backlog", default=1 << 20, type=int, help="unsent bytes per WebSocket before it is closed (1013)")
    d("ping_interval", default=25.0, type=float, help="seconds between WebSocket pings")
    d("debug", default=False, type=bool, help="Tornado debug mode (autoreload)")
    d("access_log", default=False, type=bool, help="log every HTTP request (default: only 4xx and 5xx answers)")
    d("event_loop", default="asyncio", help="event loop: asyncio or uvloop (pip install 'obrolan[fast]')")
    d("redis_url", default="", help="redis://host:port/db: history, ids, presence and fan-out in Redis, "
      "shared by every process using it (replaces --store)")
    d("processes", default=1, type=int, help="worker processes sharing the port (0 = one per core; "
      "more than 1 needs --redis-url)")
    d("presence_expiry", default=5.0, type=float, help="with --redis-url: seconds after which the users "
      "of a process that died leave (plus the grace period)")


@dataclass
class Settings:
    """Everything make_app needs; built from options or directly by tests."""

    data_dir: str = "./data"
    store: str = "sqlite"
    history_max_events: int = 0
    history_max_age: float = 0.0  # seconds
    cookie_secret: str = ""
    allowed_origins: list[str] = field(default_factory=list)
    buffer_size: int = 1000  # events per room
    presence_grace: float = 10.0  # seconds
    rate_limit: float = 5.0  # messages per second per session
    rate_burst: int = 10
    max_message_length: int = 2000  # characters
    max_backlog: int = 1 << 20  # bytes
    ping_interval: float = 25.0  # seconds
    debug: bool = False
    event_loop: str = "asyncio"  # read by main(), not by make_app
    access_log: bool = False
    redis_url: str = ""
    processes: int = 1
    presence_expiry: float = 5.0  # seconds


def parse_settings(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> tuple[Settings, str, int]:
    """Options from ``OBROLAN_*`` variables, then the command line (which wins)."""
    parser = OptionParser()
    define_options(parser)
    environ = dict(os.environ) if environ is None else environ
    from_env = [f"--{name}={environ[ENV_PREFIX + name.upper().replace('-', '_')]}"
                for name in parser.as_dict() if name != "help"
                if ENV_PREFIX + name.upper().replace("-", "_") in environ]
    argv = sys.argv if argv is None else argv
    parser.parse_command_line([argv[0] if argv else "chat.py", *from_env, *argv[1:]])
    opts = parser.as_dict()
    settings = Settings(
        data_dir=opts["data_dir"], store=opts["store"], cookie_secret=opts["cookie_secret"],
        history_max_events=opts["history_max_events"], history_max_age=opts["history_max_age"],
        allowed_origins=[o.strip().rstrip("/") for o in opts["allowed_origins"].split(",") if o.strip()],
        buffer_size=opts["buffer_size"], presence_grace=opts["presence_grace"],
        rate_limit=opts["rate_limit"], rate_burst=opts["rate_burst"],
        max_message_length=opts["max_message_length"], max_backlog=opts["max_backlog"],
        ping_interval=opts["ping_interval"], debug=opts["debug"], event_loop=opts["event_loop"],
        access_log=opts["access_log"],
        redis_url=opts["redis_url"], processes=opts["processes"], presence_expiry=opts["presence_expiry"])
    return settings, opts["address"], opts["port"]


def load_cookie_secret(settings: Settings) -> str:
    """The given secret, or one generated once and kept in data-dir so sessions survive restarts."""
    if settings.cookie_secret:
        return settings.cookie_secret
    path = Path(settings.data_dir) / "cookie_secret"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def make_app(settings: Settings | None = None) -> tornado.web.Application:
    """The Tornado application; its hub is ``app.hub`` (start it with ``await app.hub.start()``)."""
    settings = settings or Settings()
    if settings.history_max_events < 0 or settings.history_max_age < 0:
        raise ValueError("--history-max-events and --history-max-age must be 0 (no limit) or more")
    retention = Retention(settings.history_max_events, settings.history_max_age)
    # The buffer caches what is kept: never more events than the retention keeps.
    buffer_size = min(settings.buffer_size, retention.max_events or settings.buffer_size)
    if settings.redis_url and settings.presence_expiry <= 0:
        raise ValueError("--presence-expiry must be more than 0 seconds")
    backend = open_backend(settings.store, settings.data_dir, retention, redis_url=settings.redis_url,
                           grace_s=settings.presence_grace, expiry_s=settings.presence_expiry)
    hub = Hub(backend, HubConfig(
        buffer_size=buffer_size, presence_grace_s=settings.presence_grace,
        rate_limit_per_s=settings.rate_limit, rate_burst=settings.rate_burst,
        max_message_chars=settings.max_message_length))
    config = AppConfig(cookie_secret=load_cookie_secret(settings),
                       allowed_origins=frozenset(settings.allowed_origins),
                       max_backlog_bytes=settings.max_backlog, pinger=Pinger(settings.ping_interval))
    app = tornado.web.Application(
        routes(hub, config),
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),
        cookie_secret=config.cookie_secret,
        autoescape="xhtml_escape",
        cross_origin_protection=True,  # refuses cross-site form posts; curl sends no Origin
        websocket_ping_interval=0,  # the Pinger pings every socket from one timer
        websocket_max_message_size=WS_MAX_FRAME_BYTES,
        default_handler_class=NotFoundHandler,
        default_handler_args={"hub": hub, "config": config},
        debug=settings.debug,
        **({} if settings.access_log else {"log_function": log_failed_request}),
    )
    app.hub = hub  # type: ignore[attr-defined]
    return app


def load_translations() -> None:
    locale_dir = HERE / "locale"
    if locale_dir.is_dir():
        tornado.locale.load_translations(str(locale_dir))
    tornado.locale.set_default_locale("en_US")


async def serve(settings: Settings, address: str, port: int, sockets: list[socket.socket] | None = None,
                parent_fd: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or, in a worker, until the parent is gone)."""
    app = make_app(settings)
    hub: Hub = app.hub  # type: ignore[attr-defined]
    await hub.start()
    server = tornado.httpserver.HTTPServer(app, xheaders=True, max_body_size=HTTP_SERVER_MAX_BODY_BYTES)
    if sockets is not None:
        server.add_sockets(sockets)  # a worker: the parent bound them before forking
    else:
        server.listen(port, address)
    log.info("Obrolan listening on http://%s:%d/ (store: %s, pid %d)", address, port,
             "redis" if settings.redis_url else settings.store, os.getpid())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if parent_fd is not None:
        def parent_gone() -> None:  # EOF: the parent was told to stop (or died)
            loop.remove_reader(parent_fd)
            stop.set()
        loop.add_reader(parent_fd, parent_gone)
    await stop.wait()
    log.info("shutting down")
    server.stop()  # stop accepting
    await hub.close()  # answers long-polls, closes WebSockets with 1001
    try:
        await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE_S)
    except TimeoutError:
        log.warning("some connections did not close in time")


def fork_workers(count: int) -> int:
    """Fork ``count`` workers; in each, return the read end of a pipe the parent holds open.

    The parent stays in :func:`tornado.process.fork_processes` (which restarts a worker
    that crashes) until every worker has exited.  On SIGTERM/SIGINT it closes the pipe:
    each worker sees EOF and shuts down gracefully, as on its own SIGTERM.
    """
    alive_r, alive_w = os.pipe()
    closed = False

    def stop(signum: int, frame: object) -> None:
        nonlocal closed
        if not closed:
            closed = True
            os.close(alive_w)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tornado.process.fork_processes(count)  # returns only in a worker
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # serve() installs the worker's own handlers
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if not closed:
        os.close(alive_w)
    return alive_r


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``--event-loop`` names (None: asyncio's default); uvloop is an optional extra."""
    if name == "asyncio":
        return None
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.error("cannot start: --event-loop=uvloop needs uvloop (pip install 'obrolan[fast]')")
            sys.exit(2)
        return uvloop.new_event_loop
    log.error("cannot start: --event-loop must be asyncio or uvloop, not %r", name)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    settings, address, port = parse_settings(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load_translations()
    new_loop = loop_factory(settings.event_loop)  # refuse a bad choice before forking
    workers = settings.processes if settings.processes > 0 else tornado.process.cpu_count()
    sockets, parent_fd = None, None
    if workers > 1:
        if not settings.redis_url:
            log.error("cannot start: --processes=%d needs --redis-url; separate processes share rooms, "
                      "ids and presence only through Redis", workers)
            sys.exit(2)
        settings.cookie_secret = load_cookie_secret(settings)  # once, before workers race to create it
        sockets = tornado.netutil.bind_sockets(port, address)
        parent_fd = fork_workers(workers)
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(serve(settings, address, port, sockets, parent_fd))
    except ChatError as exc:  # e.g. the history database cannot be opened: say why, no traceback
        log.error("cannot start: %s", exc.detail)
        sys.exit(1)


if __name__ == "__main__":
    main()
