"""Truth at the edges, under faults: one server per database file; Redis frozen, absent, gone."""

from __future__ import annotations

import os
import signal

import pytest

from tests.chatclient import Api, form_join, room_url, session_cookie
from tests.redis_helpers import ChatServer, RedisServer
from tests.servers import ChatProcess, free_port

SECRET = "edges-secret"


@pytest.fixture
def procs(tmp_path):
    started: list[ChatProcess] = []

    def make(data_dir: str, *args: str) -> ChatProcess:
        proc = ChatProcess(tmp_path / data_dir, f"--cookie-secret={SECRET}", *args,
                           log_path=tmp_path / f"server{len(started)}.log")
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


@pytest.mark.gen_test(timeout=60)
async def test_a_second_server_on_the_same_database_refuses_to_start_and_the_first_goes_on(procs, tmp_path):
    first = await procs("data").started()
    api = Api(first.url)
    try:
        ani = await api.join("Ani", "satu")
        assert (await ani.post("sebelum")).status == 201
        second = procs("data")  # the same --data-dir, so the same obrolan.sqlite3
        second.spawn()
        assert await second.exited(30) == 1
        lines = [line for line in second.log_tail().splitlines() if line.strip()]
        assert "Traceback" not in second.log_tail()
        assert "in use by another Obrolan server" in lines[-1] and "obrolan.sqlite3" in lines[-1]
        shared = tmp_path / "data" / "obrolan.sqlite3"
        third = procs("other", f"--store=sqlite:{shared}")  # another data dir, the same file
        third.spawn()
        assert await third.exited(30) == 1
        assert "in use by another Obrolan server" in third.log_tail()
        after = await ani.post("sesudah")  # the first server never noticed
        assert after.status == 201 and after.json["id"] == 3
    finally:
        api.close()
    first.kill()  # a crash releases the lock with the process
    restarted = await procs("data").started()
    api = Api(restarted.url)
    try:
        budi = await api.join("Budi", "satu")
        assert (await budi.post("lagi")).json["id"] > after.json["id"]
    finally:
        api.close()


# -- Redis: frozen, unreachable at start, down while serving pages ------------------------------


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)  # never leave it frozen
    server.stop()


@pytest.fixture
def redis_chat(redis, tmp_path):
    server = ChatServer(tmp_path, "p0", redis.url, "--presence-grace=30")
    server.spawn().wait_ready()
    yield server
    server.kill()


@pytest.mark.gen_test(timeout=60)
async def test_a_frozen_redis_answers_outcome_unknown_and_a_retry_returns_the_stored_event(redis, redis_chat):
    api = Api(redis_chat.url)
    try:
        ani = await api.join("Ani", "beku")
        a = await ani.ws()
        await a.handshake()
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)  # the commands go out, no answer comes
        try:
            resp = await ani.post("lewat http", client_id="h-1")
            assert resp.status == 503 and resp.json["error"] == "outcome_unknown", resp.body
            assert "may have been stored" in resp.json["detail"] and "nothing was stored" not in resp.json["detail"]
            await a.send({"type": "message", "text": "lewat ws", "client_id": "w-1"})
            frame = await a.recv_until(lambda f: f.get("client_id") == "w-1", timeout=15)
            assert (frame["type"], frame["error"]) == ("error", "outcome_unknown")
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        first = await ani.post("lewat http", client_id="h-1")  # the retry finds out
        assert first.status == 201, first.body
        await a.send({"type": "message", "text": "lewat ws", "client_id": "w-1"})
        ack = await a.recv_until(lambda f: f.get("client_id") == "w-1" and f.get("type") == "ack", timeout=15)
        again = await ani.post("lewat http", client_id="h-1")
        assert again.status == 201 and again.json == first.json  # the same event, every time
        history = (await ani.poll(after=0, wait=0)).json["events"]
        texts = [e["text"] for e in history if e["type"] == "message"]
        assert sorted(texts) == ["lewat http", "lewat ws"]  # each stored once
        assert ack["id"] in [e["id"] for e in history]
        a.close()
    finally:
        api.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_server_whose_redis_cannot_be_reached_at_start_says_so_in_one_line(tmp_path):
    port = free_port()  # nothing listens there
    server = ChatServer(tmp_path, "p0", f"redis://:rahasia@127.0.0.1:{port}/0")
    server.spawn()
    assert await server.exited(30) == 1
    log = server.log_tail()
    assert "Traceback" not in log and "rahasia" not in log
    last = [line for line in log.splitlines() if line.strip()][-1]
    assert "cannot start: cannot reach Redis at redis://:***@127.0.0.1:" in last
    assert "listening" not in log


@pytest.mark.gen_test(timeout=60)
async def test_pages_say_the_chat_is_unavailable_and_retry_in_the_readers_language(redis, redis_chat):
    api = Api(redis_chat.url)
    try:
        resp = await form_join(api, "Sari", "gelap")
        cookie = session_cookie(resp)
        tono = await api.join("Tono", "gelap")
        redis.kill()
        page = await api.request("GET", room_url("belum dibuka"), headers={
            "Cookie": cookie, "Accept": "text/html", "Accept-Language": "id-ID,id;q=0.9"})
        assert page.status == 503 and page.headers["Content-Type"].startswith("text/html")
        body = page.body.decode()
        assert "Obrolan sedang tidak tersedia" in body and 'http-equiv="refresh"' in body
        api_answer = await api.request("GET", room_url("belum dibuka", "/users"), token=tono.token)
        assert api_answer.status == 503 and api_answer.json["error"] == "unavailable"  # curl still gets JSON
        assert (await api.request("GET", "/healthz")).status == 200  # liveness: the process is fine
    finally:
        api.close()
