"""The servers bench/fanout.py measures, each started as a subprocess and always stopped.

- ``obrolan``: ``python chat.py`` with the rate limit off (the bench sends far
  faster than a person) and pings far apart (the load generator does not answer them).
- ``tornado``: bench/tornado_room.py, plain Tornado with ``write_message`` per member.
- ``socketio``: bench/socketio/server.js on Node.js; ``npm ci`` in bench/socketio
  the first time (the bench's own set-up: the product never needs Node).

Each child is pinned to a CPU when asked (``os.sched_setaffinity`` before exec)
and gets ``PR_SET_PDEATHSIG`` so it dies with the bench even if the bench is killed.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SOCKETIO_DIR = BENCH / "socketio"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 6.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def setup_socketio() -> None:
    """Install socket.io into bench/socketio (once) with the lock file's versions."""
    if (SOCKETIO_DIR / "node_modules" / "socket.io").is_dir():
        return
    cmd = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run(cmd, cwd=SOCKETIO_DIR, check=True, timeout=300)


def _child_setup(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return setup


class Server:
    """A server process plus what a client needs to know to talk to it."""

    kind = "?"
    open_payload: bytes | None = None  # sent as the first client frame after the upgrade

    def __init__(self, cpu: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.cpu = cpu
        self.extra_args = extra_args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"obrolan-bench-{self.kind}-"))
        self.log_path = self.workdir / "server.log"

    # -- life cycle ----------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Server:
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_child_setup(self.cpu))
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)  # waiting for an external process to open its port
        self.stop()
        raise TimeoutError(f"{self.kind} did not open port {self.port}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- measuring -----------------------------------------------------------------

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def thread_cpu_seconds(self) -> dict[int, float]:
        """User + system CPU of each of the server's threads, by thread id (the main thread's id is
        the process id: for Obrolan, the event loop; the others are its SQLite writer and helpers)."""
        assert self.proc is not None
        out = {}
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended meanwhile
                continue
            out[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    # -- talking to it -------------------------------------------------------------

    def tokens(self, names: list[str], rooms: list[str]) -> list[str | None]:
        """Credentials per user, each joined to its room (only Obrolan has sessions)."""
        return [None] * len(names)

    def ws_path(self, room: str, name: str) -> str:
        return f"/rooms/{quote(room, safe='')}/ws?name={quote(name)}"

    def poll_path(self, room: str) -> str | None:
        return None  # no long-poll transport

    def events_path(self, room: str) -> str | None:
        return None  # no event stream

    @staticmethod
    def message(text: str) -> bytes:
        return b'{"type":"message","text":"%s"}' % text.encode()


class Obrolan(Server):
    kind = "obrolan"

    def command(self) -> list[str]:
        return [sys.executable, str(ROOT / "chat.py"), f"--port={self.port}", "--address=127.0.0.1",
                f"--data-dir={self.workdir / 'data'}", "--cookie-secret=bench-secret", "--rate-limit=0",
                "--ping-interval=3600", "--store=memory", *self.extra_args]

    def tokens(self, names: list[str], rooms: list[str]) -> list[str | None]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        out: list[str | None] = []
        try:
            for name, room in zip(names, rooms, strict=True):
                body = json.dumps({"name": name, "room": room})
                conn.request("POST", "/join", body, {"Content-Type": "application/json",
                                                     "Accept": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"join {name}: {resp.status} {data[:200]!r}")
                out.append(json.loads(data)["token"])
        finally:
            conn.close()
        return out

    def ws_path(self, room: str, name: str) -> str:
        return f"/rooms/{quote(room, safe='')}/ws"

    def poll_path(self, room: str) -> str | None:
        return f"/rooms/{quote(room, safe='')}/messages"

    def events_path(self, room: str) -> str | None:
        return f"/rooms/{quote(room, safe='')}/events"


class ObrolanUvloop(Obrolan):
    kind = "obrolan-uvloop"

    def command(self) -> list[str]:
        return [*super().command(), "--event-loop=uvloop"]


class TornadoBaseline(Server):
    kind = "tornado"

    def command(self) -> list[str]:
        return [sys.executable, str(BENCH / "tornado_room.py"), str(self.port)]


class SocketIO(Server):
    kind = "socketio"
    open_payload = b"40"  # socket.io CONNECT to the main namespace

    def command(self) -> list[str]:
        return ["node", str(SOCKETIO_DIR / "server.js"), str(self.port)]

    def start(self) -> Server:
        setup_socketio()
        return super().start()

    def ws_path(self, room: str, name: str) -> str:
        return f"/socket.io/?EIO=4&transport=websocket&room={quote(room)}&name={quote(name)}"

    @staticmethod
    def message(text: str) -> bytes:
        return b'42["msg",{"text":"%s"}]' % text.encode()


SERVERS: dict[str, type[Server]] = {"obrolan": Obrolan, "obrolan-uvloop": ObrolanUvloop,
                                    "tornado": TornadoBaseline, "socketio": SocketIO}
