"""Obrolan: a real-time room chat server on Tornado.

Options come from the command line or from ``OBROLAN_<OPTION>`` environment
variables (``--rate-burst`` <-> ``OBROLAN_RATE_BURST``); the command line wins.
They are listed, with their defaults and the values they accept, in settings.py.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tornado.httpserver
import tornado.ioloop
import tornado.locale
import tornado.netutil
import tornado.process
import tornado.web

from backends import open_backend
from handlers import AppConfig, NotFoundHandler, routes
from handlers.base import request_logger
from handlers.pinger import Heartbeat, Pinger
from handlers.ws import WS_MAX_FRAME_BYTES
from ops import CENSUS_PUBLISH_S, MULTIPROC_DIR_ENV
from ops.logs import configure_logging
from rooms import ChatError, Hub, HubConfig, Retention
from rooms.ports import NO_METRICS
from settings import (
    METRICS_PORT,
    PORT,
    Option,
    SettingError,
    Settings,
    app_config_values,
    check_processes,
    hub_config_values,
    listen_error,
    load_cookie_secret,
    parse_settings,
    prepare_data_dir,
    prepare_metrics_dir,
)

if TYPE_CHECKING:  # prometheus_client is imported when metrics are on, after main() set it up (see there)
    from prometheus_client import CollectorRegistry

    from ops.multiproc import CensusGauges

log = logging.getLogger("obrolan")

HERE = Path(__file__).resolve().parent
SHUTDOWN_GRACE_S = 4.0  # SIGTERM to exit stays under 5 s
# The body limit of handlers that do not stream their body (the WebSocket handshake, static files):
# Tornado refuses a larger one with a bare 400.  Every other handler streams it and answers 413
# itself, at any size (handlers/base.py, BaseHandler).
HTTP_SERVER_MAX_BODY_BYTES = 1 << 20
# Python's cyclic GC, left at its defaults (a young collection every 700 net allocations), ran so
# often under a steady load of small rooms that its older-generation passes over every connection's
# objects put p99 at 240-300 ms (bench/everyday.py goal 2; with the GC off: 25-40 ms).  Chat objects
# are freed by reference counting; cycles are rare.  So: what exists once the server is up is frozen
# out of the collections (modules, the app, the restored rooms), and young collections come every
# GC_GEN0_THRESHOLD allocations (then older ones every 20 and 100 of those, as measured).
GC_GEN0_THRESHOLD = 50_000
GC_GEN1_THRESHOLD = 20
GC_GEN2_THRESHOLD = 100


class ChatApp(tornado.web.Application):
    """The Tornado application, with the hub its handlers share."""

    hub: Hub
    metrics_registry: CollectorRegistry | None  # with --metrics-port
    census_gauges: CensusGauges | None  # with --metrics-port and several workers: where each writes its census


def make_app(settings: Settings | None = None, metrics_dir: Path | None = None) -> ChatApp:
    """The Tornado application; its hub is ``app.hub`` (start it with ``await app.hub.start()``).
    ``metrics_dir``: a worker of several counts into files there (``ops.multiproc``)."""
    settings = settings or Settings()
    if settings.history_max_events < 0 or settings.history_max_age < 0:
        raise ValueError("--history-max-events and --history-max-age must be 0 (no limit) or more")
    retention = Retention(settings.history_max_events, settings.history_max_age)
    if settings.redis_url and settings.presence_expiry <= 0:
        raise ValueError("--presence-expiry must be more than 0 seconds")
    backend = open_backend(settings.store, settings.data_dir, retention, redis_url=settings.redis_url,
                           grace_s=settings.presence_grace, expiry_s=settings.presence_expiry)
    registry: CollectorRegistry | None = None
    census: CensusGauges | None = None
    metrics = NO_METRICS
    if settings.metrics_port and metrics_dir is not None:
        from ops.multiproc import multiprocess_registry  # imported here: see main()
        registry, metrics, census = multiprocess_registry(metrics_dir)
    elif settings.metrics_port:
        from ops.metrics import metrics_registry
        registry, metrics = metrics_registry()
    hub = Hub(backend, HubConfig(**hub_config_values(settings)), metrics)
    config = AppConfig(cookie_secret=load_cookie_secret(settings), pinger=Pinger(settings.ping_interval),
                       heartbeat=Heartbeat(settings.heartbeat_interval), **app_config_values(settings))
    app = ChatApp(
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
        log_function=request_logger(settings.access_log),
    )
    app.hub = hub
    app.metrics_registry = registry
    app.census_gauges = census
    return app


def server_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of the HTTPServer (``serve`` and the in-process tests use them)."""
    return {"xheaders": settings.trust_proxy, "max_body_size": HTTP_SERVER_MAX_BODY_BYTES}


def load_translations() -> None:
    locale_dir = HERE / "locale"
    if locale_dir.is_dir():
        tornado.locale.load_translations(str(locale_dir))
    tornado.locale.set_default_locale("en_US")


async def serve(settings: Settings, address: str, port: int, sockets: list[socket.socket] | None = None,
                parent_fd: int | None = None, metrics_sockets: list[socket.socket] | None = None,
                metrics_dir: Path | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or, in a worker, until the parent is gone)."""
    app = make_app(settings, metrics_dir)
    hub = app.hub
    await hub.start()
    server = tornado.httpserver.HTTPServer(app, **server_options(settings))
    if sockets is not None:
        server.add_sockets(sockets)  # main() bound them (before forking, with workers)
    else:
        server.listen(port, address)
    metrics_server = serve_metrics(app, settings, address, metrics_sockets)
    census_timer = None
    if app.census_gauges is not None:  # every worker writes its census for the one that serves /metrics
        census = app.census_gauges
        census.publish(hub.census())
        census_timer = tornado.ioloop.PeriodicCallback(lambda: census.publish(hub.census()),
                                                       CENSUS_PUBLISH_S * 1000)
        census_timer.start()
    gc.freeze()  # see GC_GEN0_THRESHOLD
    gc.set_threshold(GC_GEN0_THRESHOLD, GC_GEN1_THRESHOLD, GC_GEN2_THRESHOLD)
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
    if metrics_server is not None:
        metrics_server.stop()
    if census_timer is not None:
        census_timer.stop()
    await hub.close()  # answers long-polls, closes WebSockets with 1001, ends streams with "restarting"
    try:
        await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE_S)
    except TimeoutError:
        log.warning("some connections did not close in time")


def serve_metrics(app: ChatApp, settings: Settings, address: str,
                  metrics_sockets: list[socket.socket] | None) -> tornado.httpserver.HTTPServer | None:
    """The /metrics listener, in one process only: the server, or worker 0 of several (the parent
    starts a new worker 0 if it dies, on the same sockets); the other workers close their copies."""
    if app.metrics_registry is None:
        return None
    if tornado.process.task_id() not in (None, 0):
        for sock in metrics_sockets or ():
            sock.close()
        return None
    from ops.metrics import metrics_app  # imported here: see main()
    store = "redis" if settings.redis_url else settings.store.partition(":")[0]
    metrics_server = tornado.httpserver.HTTPServer(metrics_app(app.hub, app.metrics_registry, store,
                                                               request_logger(False), app.census_gauges))
    if metrics_sockets is not None:
        metrics_server.add_sockets(metrics_sockets)
    else:
        metrics_server.listen(settings.metrics_port, address)
    log.info("metrics on http://%s:%d/metrics (pid %d)", address, settings.metrics_port, os.getpid())
    return metrics_server


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
            raise SettingError("--event-loop", "--event-loop=uvloop needs uvloop: "
                                               "pip install -e '.[fast]', or --event-loop=asyncio") from None
        return uvloop.new_event_loop
    raise SettingError("--event-loop", f"--event-loop must be asyncio or uvloop, not {name!r}")


def bind(address: str, port: int, option: Option[Any] = PORT) -> list[socket.socket]:
    """The listening sockets, bound before anything starts (and before workers fork)."""
    try:
        return tornado.netutil.bind_sockets(port, address)
    except OSError as exc:  # the port is taken, the address is not this machine's, ...
        raise listen_error(exc, address, port, option) from None


def main(argv: list[str] | None = None) -> None:
    try:  # every mistake in the settings is one line on stderr and status 2, before anything starts
        settings, address, port = parse_settings(argv)
        new_loop = loop_factory(settings.event_loop)  # refuse a bad choice before forking
        workers = settings.processes if settings.processes > 0 else tornado.process.cpu_count()
        check_processes(settings, workers)
        if settings.redis_url and importlib.util.find_spec("redis") is None:
            raise SettingError("--redis-url", "--redis-url needs the redis package: pip install -e '.[redis]'")
        settings.cookie_secret = prepare_data_dir(settings)  # once, before workers race to create it
        sockets = bind(address, port)
        metrics_sockets = bind(address, settings.metrics_port, METRICS_PORT) if settings.metrics_port else None
        # Several workers sum their metrics through files: the folder is emptied (ours: we hold its port),
        # and prometheus_client, which reads the variable when imported, is imported only in the workers.
        metrics_dir = prepare_metrics_dir(settings) if metrics_sockets and workers > 1 else None
    except SettingError as exc:
        print(exc.line, file=sys.stderr)
        sys.exit(2)
    port = sockets[0].getsockname()[1]  # the one the system picked for --port=0
    configure_logging(settings.log_format, settings.log_level)
    load_translations()
    if metrics_dir is not None:
        os.environ[MULTIPROC_DIR_ENV] = str(metrics_dir)
    parent_fd = fork_workers(workers) if workers > 1 else None
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(serve(settings, address, port, sockets, parent_fd, metrics_sockets, metrics_dir))
    except ChatError as exc:  # e.g. the history database cannot be opened: say why, no traceback
        log.error("cannot start: %s", exc.detail)
        sys.exit(1)


if __name__ == "__main__":
    main()
