"""The event loop chosen at start (``--event-loop``): a real ``python chat.py`` on each, and a refusal."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.chatclient import Api, is_event
from tests.servers import ROOT, ChatProcess, free_port


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
@pytest.mark.gen_test(timeout=30)
async def test_server_runs_on_the_event_loop_it_is_given(tmp_path, event_loop):
    server = ChatProcess(tmp_path, "--store=memory", "--cookie-secret=t", f"--event-loop={event_loop}",
                         log_path=tmp_path / "server.log")
    api = Api(server.url)
    try:
        await server.started()
        ani = await api.join("Ani", "loop")
        budi = await api.join("Budi", "loop")
        a, b = await ani.ws(), await budi.ws()
        await a.handshake()
        await b.handshake()
        await a.send({"type": "message", "text": f"halo dari {event_loop}"})
        got = await b.recv_until(is_event("message"))
        assert (got["user"], got["text"]) == ("Ani", f"halo dari {event_loop}")
        polled = await budi.poll(after=got["id"] - 1, wait=5)
        assert [e["text"] for e in polled.json["events"]] == [f"halo dari {event_loop}"]
        server.proc.send_signal(signal.SIGTERM)
        assert await a.closed() == 1001
        b.close()
        assert await server.exited(15) == 0, server.log_tail()
    finally:
        api.close()
        server.kill()


def test_unknown_event_loop_is_refused_with_a_clear_message(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "chat.py"), f"--port={free_port()}", "--store=memory",
         f"--data-dir={tmp_path}", "--cookie-secret=t", "--event-loop=twisted"],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert done.returncode == 2
    assert b"--event-loop must be asyncio or uvloop" in done.stderr
