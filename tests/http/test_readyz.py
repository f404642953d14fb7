"""``/readyz`` while the hub shuts down (what SIGTERM starts, in-process: a real server's listener
is already closed by then, so only a connection it still serves could see the answer)."""

from __future__ import annotations

import asyncio

import pytest

from tests.chatclient import held_poll_by_newcomer

SHUTDOWN_TIMEOUT_S = 10.0  # bounds a hang


@pytest.mark.gen_test(timeout=30)
async def test_not_ready_while_shutting_down_with_a_longpoll_held(api, hub):
    assert (await api.request("GET", "/readyz")).json == {"ready": True}
    ani = await api.join("Ani", "ready")
    budi = await api.join("Budi", "ready")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    # Budi's first connection is a long-poll that has to wait: it makes him present.
    poll, _ = await held_poll_by_newcomer(a, budi, hello["cursor"], wait=30)
    closing = asyncio.ensure_future(hub.close())
    resp = await api.request("GET", "/readyz")
    assert resp.status == 503 and resp.json == {"error": "not_ready", "detail": "shutting down"}
    answered = await asyncio.wait_for(poll, SHUTDOWN_TIMEOUT_S)
    assert answered.status == 200 and answered.json["events"] == []  # it was held, and shutdown answered it
    await asyncio.wait_for(closing, SHUTDOWN_TIMEOUT_S)
