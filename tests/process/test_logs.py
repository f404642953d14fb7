"""``--log-format=json``: one JSON object per line, request fields on request lines; and no token,
cookie or message text in any line, at ``--log-level=debug``, over a whole session."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.chatclient import Api, form_join, room_url, session_cookie
from tests.servers import ChatProcess

EXIT_TIMEOUT_S = 15.0  # bounds a hang
SECRET_TEXT_HTTP = "kalimat-rahasia-lewat-http-7f3a"  # distinctive: found nowhere else in a log
SECRET_TEXT_WS = "kalimat-rahasia-lewat-websocket-91c2"


@pytest.mark.gen_test(timeout=60)
async def test_a_whole_session_logs_json_lines_with_no_token_cookie_or_text(tmp_path):
    log_path = tmp_path / "server.log"
    server = ChatProcess(tmp_path / "data", "--log-format=json", "--log-level=debug", log_path=log_path)
    api = Api(server.url)
    try:
        await server.started()
        ani = await api.join("Ani", "log")
        budi = await api.join("Budi", "log")
        cookie = session_cookie(await form_join(api, "Citra", "log"))
        page = await api.request("GET", room_url("log"), headers={"Cookie": cookie, "Accept": "text/html"})
        assert page.status == 200
        a = await ani.ws()
        hello, _, _ = await a.handshake()
        poll = asyncio.ensure_future(budi.poll(after=hello["cursor"], wait=30))
        assert (await ani.post(SECRET_TEXT_HTTP)).status == 201
        await a.send({"type": "message", "text": SECRET_TEXT_WS})
        await a.recv_until(lambda f: f.get("text") == SECRET_TEXT_WS)
        answered = await asyncio.wait_for(poll, EXIT_TIMEOUT_S)
        assert answered.status == 200 and answered.json["events"]
        # A refused request whose query carries the token: the query is never logged.
        refused = await api.request("GET", room_url("log", "/messages") + f"?after=x&token={ani.token}")
        assert refused.status in (400, 401)
        a.close()
        await server.stopped()
    finally:
        api.close()
        server.kill()

    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON object
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    requests = [line for line in lines if "status" in line]
    assert {(r["method"], r["path"]) for r in requests} >= {
        ("POST", "/join"), ("GET", room_url("log", "/messages")), ("POST", room_url("log", "/messages")),
        ("GET", room_url("log", "/ws"))}
    assert all("?" not in r["path"] and isinstance(r["duration_ms"], float | int) for r in requests)
    assert any(r["level"] == "debug" and r["status"] == 200 for r in requests)  # successes at debug
    cookie_value = cookie.split("=", 1)[1]
    for secret in (ani.token, budi.token, cookie_value, SECRET_TEXT_HTTP, SECRET_TEXT_WS):
        assert secret not in text
