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
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tornado.httpserver
import tornado.locale
import tornado.web
from tornado.options import OptionParser

from handlers import AppConfig, NotFoundHandler, routes
from rooms import Hub, HubConfig, make_store

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
    d("store", default="memory", help="history store: memory or sqlite[:path]")
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


@dataclass
class Settings:
    """Everything make_app needs; built from options or directly by tests."""

    data_dir: str = "./data"
    store: str = "memory"
    cookie_secret: str = ""
    allowed_origins: list[str] = field(default_factory=list)
    buffer_size: int = 1000
    presence_grace: float = 10.0
    rate_limit: float = 5.0
    rate_burst: int = 10
    max_message_length: int = 2000
    max_backlog: int = 1 << 20
    ping_interval: float = 25.0
    debug: bool = False


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
        allowed_origins=[o.strip().rstrip("/") for o in opts["allowed_origins"].split(",") if o.strip()],
        buffer_size=opts["buffer_size"], presence_grace=opts["presence_grace"],
        rate_limit=opts["rate_limit"], rate_burst=opts["rate_burst"],
        max_message_length=opts["max_message_length"], max_backlog=opts["max_backlog"],
        ping_interval=opts["ping_interval"], debug=opts["debug"])
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
    hub = Hub(make_store(settings.store, settings.data_dir), HubConfig(
        buffer_size=settings.buffer_size, presence_grace_s=settings.presence_grace,
        rate_limit_per_s=settings.rate_limit, rate_burst=settings.rate_burst,
        max_message_chars=settings.max_message_length))
    config = AppConfig(cookie_secret=load_cookie_secret(settings),
                       allowed_origins=frozenset(settings.allowed_origins),
                       max_backlog_bytes=settings.max_backlog)
    app = tornado.web.Application(
        routes(hub, config),
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),
        cookie_secret=config.cookie_secret,
        autoescape="xhtml_escape",
        cross_origin_protection=True,  # refuses cross-site form posts; curl sends no Origin
        websocket_ping_interval=settings.ping_interval,
        websocket_ping_timeout=settings.ping_interval,
        websocket_max_message_size=65536,
        default_handler_class=NotFoundHandler,
        default_handler_args={"hub": hub, "config": config},
        debug=settings.debug,
    )
    app.hub = hub  # type: ignore[attr-defined]
    return app


def load_translations() -> None:
    locale_dir = HERE / "locale"
    if locale_dir.is_dir():
        tornado.locale.load_translations(str(locale_dir))
    tornado.locale.set_default_locale("en_US")


async def serve(settings: Settings, address: str, port: int) -> None:
    app = make_app(settings)
    hub: Hub = app.hub  # type: ignore[attr-defined]
    await hub.start()
    server = tornado.httpserver.HTTPServer(app, xheaders=True, max_body_size=HTTP_SERVER_MAX_BODY_BYTES)
    server.listen(port, address)
    log.info("Obrolan listening on http://%s:%d/ (store: %s)", address, port, settings.store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    server.stop()  # stop accepting
    await hub.close(1001, "server shutting down")  # answers long-polls, closes WebSockets with 1001
    try:
        await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE_S)
    except TimeoutError:
        log.warning("some connections did not close in time")


def main(argv: list[str] | None = None) -> None:
    settings, address, port = parse_settings(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load_translations()
    asyncio.run(serve(settings, address, port))


if __name__ == "__main__":
    main()
