"""SIGTERM on a real ``python chat.py`` process: long-polls answered, WebSockets closed with 1001, exit within 5 s."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import tornado.testing

from tests.chatclient import Api, is_event, room_url

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 5.0


async def start_server(tmp_path: Path, *args: str) -> tuple[asyncio.subprocess.Process, int]:
    sock, port = tornado.testing.bind_unused_port()
    sock.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "chat.py"), f"--port={port}", f"--data-dir={tmp_path / 'data'}",
        "--presence-grace=30", *args, cwd=str(tmp_path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    # The process is ready once its port accepts connections (polled with a deadline).
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert proc.returncode is None, "the server exited at start"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("store", [[], ["--store=memory"]], ids=["default-store", "memory"])
@pytest.mark.gen_test(timeout=40)
async def test_sigterm_answers_longpolls_closes_websockets_and_exits(tmp_path, store):
    proc, port = await start_server(tmp_path, *store)
    api = Api(f"http://127.0.0.1:{port}")
    try:
        ani = await api.join("Ani", "tutup")
        budi = await api.join("Budi", "tutup")
        a = await ani.ws()
        hello, _, _ = await a.handshake()
        # Budi's first connection is a long-poll that has to wait (see test_longpoll.held_poll_by_newcomer).
        poll = asyncio.ensure_future(budi.poll(after=hello["cursor"] + 1, wait=30))
        await a.recv_until(is_event("join", "Budi"))

        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert await a.closed(timeout=EXIT_TIMEOUT_S) == 1001
        # it stopped accepting before it closed the sockets
        with pytest.raises(OSError):
            sock = socket.create_connection(("127.0.0.1", port), timeout=1)
            sock.close()
        resp = await asyncio.wait_for(poll, EXIT_TIMEOUT_S)
        assert resp.status == 200, (resp.status, resp.body)
        assert resp.json["events"] == [] and resp.json["cursor"] == hello["cursor"] + 1
        code = await asyncio.wait_for(proc.wait(), EXIT_TIMEOUT_S - (time.monotonic() - started))
        assert code == 0, (await proc.stderr.read()).decode()[-2000:]
    finally:
        api.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.gen_test(timeout=40)
async def test_sigterm_with_idle_and_busy_connections(tmp_path):
    """Idle keep-alive clients and a page load in flight do not hold the exit up."""
    proc, port = await start_server(tmp_path, "--store=memory")
    api = Api(f"http://127.0.0.1:{port}")
    try:
        user = await api.join("Ani", "idle")
        assert (await user.post("halo")).status == 201  # leaves a keep-alive connection open
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)  # never sends a byte
        page = await api.request("GET", room_url("idle"), token=user.token)
        assert page.status == 200
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), EXIT_TIMEOUT_S)
        assert code == 0
        assert await asyncio.wait_for(idle_reader.read(), 1) == b""  # closed by the server
        idle_writer.close()
    finally:
        api.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
