"""Real ``python chat.py`` processes for the tests that need one (kill, restart, signals, several processes).

A process gets a free loopback port, its options on the command line (never from the
caller's OBROLAN_* environment) and a log file.  It is ready once ``/healthz`` answers;
that is polled with a deadline, the one kind of wait allowed here: an outside process
becoming ready.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 20.0  # a cold start of python + tornado on a busy 2-core machine
READY_RECHECK_S = 0.02  # between two asks whether another process is ready
STOP_TIMEOUT_S = 10.0  # SIGTERM exits within 5 s by design; then SIGKILL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready: Callable[[], bool], what: str, proc: subprocess.Popen,
               timeout_s: float = READY_TIMEOUT_S) -> None:
    """Check ``ready`` until it holds; fail as soon as ``proc`` exits, or after ``timeout_s``.

    Another process's readiness (a port that accepts, an HTTP answer) sends no event to await, so
    it is asked again every ``READY_RECHECK_S``; the pause between two asks is a wait on ``proc``
    itself, so its exit ends the wait at once instead of after a sleep."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        try:
            proc.wait(READY_RECHECK_S)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"{what} exited with {proc.returncode}")
    raise RuntimeError(f"{what} not ready within {timeout_s} s")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Send ``sig`` and wait; SIGKILL if it has not exited within ``timeout_s``."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class ChatProcess:
    """``python chat.py --port=N --address=127.0.0.1 --data-dir=... *args`` on a free port.

    The port stays the same across restarts.  Output (stdout and stderr) is appended to
    ``log_path``; ``None`` discards it.
    """

    def __init__(self, data_dir: Path, *args: str, log_path: Path | None = None, cwd: Path = ROOT) -> None:
        self.data_dir = data_dir
        self.args = list(args)
        self.log_path = log_path
        self.cwd = cwd
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        return [sys.executable, str(ROOT / "chat.py"), f"--port={self.port}", "--address=127.0.0.1",
                f"--data-dir={self.data_dir}", *self.args, *extra]

    def spawn(self, *extra: str, wrapper: Sequence[str] = (), preexec_fn: Callable[[], None] | None = None,
              log: bool = True) -> ChatProcess:
        """Start the process.  ``wrapper`` goes before the python command (e.g. ``setpriv ...``),
        ``preexec_fn`` runs in the child (e.g. a file size limit), ``log=False`` writes no log."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OBROLAN_")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        out = open(self.log_path, "ab") if self.log_path is not None and log else None
        try:
            self.proc = subprocess.Popen([*wrapper, *self.command(*extra)], cwd=self.cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out or subprocess.DEVNULL,
                                         stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
                                         preexec_fn=preexec_fn)
        finally:
            if out is not None:
                out.close()
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1.0) as resp:
                return resp.status == 200
        except (OSError, http.client.HTTPException):  # not listening yet, or closed mid-answer while starting
            return False

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> ChatProcess:
        assert self.proc is not None
        try:
            wait_until(self.healthy, f"chat.py on {self.port}", self.proc, timeout_s)
        except RuntimeError as exc:
            self.kill()  # not ready in time: leave nothing running
            raise AssertionError(f"{exc}:\n{self.log_tail()}") from None
        return self

    def start(self, *extra: str, **spawn_options) -> ChatProcess:
        return self.spawn(*extra, **spawn_options).wait_ready()

    async def started(self, *extra: str, **spawn_options) -> ChatProcess:
        """:meth:`start` from a coroutine: the test's event loop keeps running meanwhile."""
        self.spawn(*extra, **spawn_options)
        await asyncio.to_thread(self.wait_ready)
        return self

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path is not None and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-chars:]
        return "(no log)"

    def kill(self) -> None:
        """SIGKILL: what a crash looks like (no flush, no goodbye)."""
        if self.proc is not None:
            stop_process(self.proc, signal.SIGKILL)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            stop_process(self.proc, sig)

    async def stopped(self) -> None:
        await asyncio.to_thread(self.stop)

    async def exited(self, timeout_s: float) -> int:
        """The exit code, waited for without blocking the event loop; fails after ``timeout_s``."""
        assert self.proc is not None
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout_s)
