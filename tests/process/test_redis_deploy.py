"""Deployment: nginx (with the repo's deploy/nginx.conf) in front of two processes, and
``--processes`` forking workers that share one port."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chatclient import Api, is_event, is_presence
from tests.redis_helpers import ROOT, ChatServer, Nginx, start_servers, stop_process, wait_until

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def proxied(redis, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("nginx")
    servers = start_servers(workdir, redis.url, 2)
    nginx = Nginx(workdir, servers).start()
    yield nginx, servers
    nginx.stop()
    for server in servers:
        server.stop()


def long_polls_served(nginx: Nginx, server: ChatServer, room_path: str) -> int:
    """Long-polls nginx handed to ``server``, from its access log."""
    lines = nginx.access_log.read_text().splitlines()
    return sum(1 for line in lines if line.startswith(f"127.0.0.1:{server.port} GET {room_path}/messages?after="))


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_chat_through_nginx_over_websocket_and_long_poll_with_no_sticky_sessions(proxied):
    nginx, servers = proxied
    api = Api(nginx.url)
    ani = await api.join("Ani", "depan")
    budi = await api.join("Budi", "depan")
    a = await ani.ws(headers={"Origin": nginx.url})  # the browser's Origin: the proxy's host and port
    hello, _, users = await a.handshake()
    assert users == ["Ani"]
    first = await budi.poll(after=0, wait=0)
    cursor = first.json["cursor"]
    await a.recv_until(is_presence(["Ani", "Budi"]))

    # Budi waits in a long-poll (on whichever process nginx picked) while Ani speaks over WebSocket.
    waiting = asyncio.ensure_future(budi.poll(after=cursor, wait=20))
    await a.send({"type": "message", "text": "halo lewat nginx", "client_id": "n-1"})
    assert (await a.recv_until(lambda f: f["type"] == "ack"))["client_id"] == "n-1"
    got = await waiting
    assert got.status == 200 and [e["text"] for e in got.json["events"]] == ["halo lewat nginx"]
    cursor = got.json["cursor"]

    for i in range(4):  # round robin: consecutive requests go to different processes
        sent = await budi.post(f"balas {i}")
        assert sent.status == 201
        polled = await budi.poll(after=cursor, wait=20, epoch=hello["epoch"])
        assert [e["text"] for e in polled.json["events"]] == [f"balas {i}"]
        cursor = polled.json["cursor"]
        assert (await a.recv_until(is_event("message", "Budi")))["text"] == f"balas {i}"
    assert all(long_polls_served(nginx, s, "/rooms/depan") > 0 for s in servers), "the polls were not spread"
    a.close()
    api.close()


def worker_pids(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_processes_without_redis_refuses_to_start(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "chat.py"), "--port=0", "--processes=2",
                          f"--data-dir={tmp_path}"], capture_output=True, text=True, timeout=20,
                         env={k: v for k, v in os.environ.items() if not k.startswith("OBROLAN_")})
    assert out.returncode == 2
    assert "--processes=2 needs --redis-url" in out.stderr


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_processes_fork_workers_on_one_port_and_sigterm_stops_them_all(redis, tmp_path):
    server = ChatServer(tmp_path, "forked", redis.url, "--processes=2").start()
    try:
        wait_until(lambda: len(worker_pids(server.proc.pid)) == 2, "two workers", server.proc)
        workers = worker_pids(server.proc.pid)
        api = Api(server.url)
        ani = await api.join("Ani", "garpu")
        budi = await api.join("Budi", "garpu")
        socks = [await ani.ws(), await budi.ws()]
        for sock in socks:
            await sock.handshake()
        await socks[0].recv_until(is_presence(["Ani", "Budi"]))
        await socks[1].send({"type": "message", "text": "dari pekerja mana pun"})
        got = await socks[0].recv_until(is_event("message", "Budi"))
        assert got["text"] == "dari pekerja mana pun"
        server.proc.send_signal(signal.SIGTERM)  # to the parent only
        assert [await sock.closed() for sock in socks] == [1001, 1001]
        assert server.proc.wait(10) == 0
        assert not any(_alive(pid) for pid in workers)
        api.close()
    finally:
        stop_process(server.proc, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"
