"""Real redis-server, Obrolan server processes and nginx for the scale-out tests.

Each is a real process on a free loopback port, in the test's own directory; nothing
touches the machine's own Redis (6379) or nginx.  Waiting for a process to accept
connections polls with a deadline: it is an outside process becoming ready.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from tests.chatclient import User, as_user
from tests.servers import ROOT, ChatProcess, free_port, stop_process, wait_until

__all__ = ["ROOT", "ChatServer", "Nginx", "RedisServer", "as_user", "free_port", "history", "start_servers",
           "stop_process", "wait_until"]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
COOKIE_SECRET = "scale-out-test-secret"  # every process must sign sessions alike


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer:
    """``redis-server`` on a free port.  ``persistent``: append-only file, fsync on every write,
    so a restart (even after SIGKILL) keeps everything Redis acknowledged."""

    def __init__(self, workdir: Path, persistent: bool = False) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        persist = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        with open(self.dir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persist,
                 "--dir", str(self.dir)], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.cli("PING") == "PONG", "redis-server", self.proc)
        return self

    def cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=5)
        return out.stdout.strip()

    def kill(self) -> None:
        """SIGKILL: what a crash looks like."""
        if self.proc is not None:
            stop_process(self.proc, signal.SIGKILL)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


class ChatServer(ChatProcess):
    """``python chat.py`` on its own port and data dir (``workdir/name``), against a shared Redis."""

    def __init__(self, workdir: Path, name: str, redis_url: str, *args: str) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.redis_url = redis_url
        super().__init__(self.dir / "data", f"--redis-url={redis_url}", f"--cookie-secret={COOKIE_SECRET}",
                         "--presence-grace=0.3", "--presence-expiry=1", "--rate-limit=0", *args,
                         log_path=self.dir / "server.log")


def start_servers(workdir: Path, redis_url: str, count: int, *args: str) -> list[ChatServer]:
    """``count`` servers started side by side (they import in parallel)."""
    servers = [ChatServer(workdir, f"p{i}", redis_url, *args).spawn() for i in range(count)]
    for server in servers:
        server.wait_ready()
    return servers


class Nginx:
    """nginx in front of ``backends``, with the repo's deploy/nginx.conf pointed at them."""

    def __init__(self, workdir: Path, backends: list[ChatServer]) -> None:
        self.dir = workdir / "nginx"
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.backends = backends
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        """One line per request: ``<backend host:port> <request line>``."""
        return self.dir / "logs" / "access.log"

    def config(self) -> str:
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        lines: list[str] = []
        backends_written = False
        for line in site.splitlines():
            stripped = line.strip()
            if stripped.startswith("server 127.0.0.1:"):  # the example backends: ours instead
                if not backends_written:
                    lines += [f"    server 127.0.0.1:{b.port};" for b in self.backends]
                    backends_written = True
                continue
            if stripped.startswith("listen "):
                line = f"    listen 127.0.0.1:{self.port};"
            lines.append(line)
        assert backends_written, "deploy/nginx.conf has no upstream servers to replace"
        temp = "\n".join(f"    {kind}_temp_path {self.dir / kind};" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root;\n" if os.geteuid() == 0 else ""  # the temp dirs are ours, not nobody's
        return (f"{user}daemon off;\nworker_processes 1;\npid {self.dir / 'nginx.pid'};\n"
                f"error_log {self.dir / 'logs' / 'error.log'} info;\nevents {{ worker_connections 256; }}\n"
                f"http {{\n    log_format upstreams '$upstream_addr $request';\n"
                f"    access_log {self.access_log} upstreams;\n{temp}\n"
                + "\n".join(lines) + "\n}\n")

    def start(self) -> Nginx:
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        with open(self.dir / "logs" / "stdout.log", "ab") as log:
            self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(conf)], stdout=log,
                                         stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port), "nginx", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGQUIT)


async def history(user: User, through: int = 0) -> list[dict]:
    """Every event from id 1 on, as far as id ``through`` at least (a long-poll waits for it)."""
    events, cursor = [], 0
    while True:
        resp = await user.poll(after=cursor, wait=0 if cursor >= through else 10)
        assert resp.status == 200 and not resp.json["truncated"]
        if not resp.json["events"]:
            if cursor >= through:
                return events
            continue
        events += resp.json["events"]
        cursor = resp.json["cursor"]
