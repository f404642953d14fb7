"""SIGTERM on a real ``python chat.py`` process: long-polls answered, WebSockets closed with 1001, exit 0.

The server gives its connections SHUTDOWN_GRACE_S (4 s) before it exits; how long the exit
takes is not asserted here (a busy machine may take longer): the waits only bound a hang.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import pytest

from tests.chatclient import Api, held_poll_by_newcomer, room_url
from tests.servers import ChatProcess

EXIT_TIMEOUT_S = 15.0  # bounds a hang; not the server's own deadline


def chat_server(tmp_path: Path, *args: str) -> ChatProcess:
    return ChatProcess(tmp_path / "data", "--presence-grace=30", *args, log_path=tmp_path / "server.log",
                       cwd=tmp_path)


@pytest.mark.parametrize("store", [[], ["--store=memory"]], ids=["default-store", "memory"])
@pytest.mark.gen_test(timeout=60)
async def test_sigterm_answers_longpolls_closes_websockets_and_exits(tmp_path, store):
    server = chat_server(tmp_path, *store)
    api = Api(server.url)
    try:
        await server.started()
        proc, port = server.proc, server.port
        ani = await api.join("Ani", "tutup")
        budi = await api.join("Budi", "tutup")
        a = await ani.ws()
        hello, _, _ = await a.handshake()
        # Budi's first connection is a long-poll that has to wait: it makes him present.
        poll, _ = await held_poll_by_newcomer(a, budi, hello["cursor"], wait=30)

        proc.send_signal(signal.SIGTERM)
        assert await a.closed(timeout=EXIT_TIMEOUT_S) == 1001
        # it stopped accepting before it closed the sockets
        with pytest.raises(OSError):
            sock = socket.create_connection(("127.0.0.1", port), timeout=1)
            sock.close()
        resp = await asyncio.wait_for(poll, EXIT_TIMEOUT_S)
        assert resp.status == 200, (resp.status, resp.body)
        assert resp.json["events"] == [] and resp.json["cursor"] == hello["cursor"] + 1
        code = await server.exited(EXIT_TIMEOUT_S)
        assert code == 0, server.log_tail()
    finally:
        api.close()
        server.kill()


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_with_idle_and_busy_connections(tmp_path):
    """Idle keep-alive clients and a page load in flight do not hold the exit up."""
    server = chat_server(tmp_path, "--store=memory")
    api = Api(server.url)
    try:
        await server.started()
        proc, port = server.proc, server.port
        user = await api.join("Ani", "idle")
        assert (await user.post("halo")).status == 201  # leaves a keep-alive connection open
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)  # never sends a byte
        page = await api.request("GET", room_url("idle"), token=user.token)
        assert page.status == 200
        proc.send_signal(signal.SIGTERM)
        code = await server.exited(EXIT_TIMEOUT_S)
        assert code == 0, server.log_tail()
        assert await asyncio.wait_for(idle_reader.read(), 1) == b""  # closed by the server
        idle_writer.close()
    finally:
        api.close()
        server.kill()
