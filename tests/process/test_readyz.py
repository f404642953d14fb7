"""``/readyz`` on real processes: ready while the store answers; not ready when Redis stops or
another process holds the SQLite file's write lock, while ``/healthz`` (liveness) still says the
process runs (and the metrics say the store is down)."""

from __future__ import annotations

import sqlite3

import pytest

from tests.chatclient import Api
from tests.redis_helpers import ChatServer, RedisServer
from tests.servers import ChatProcess, free_port


@pytest.mark.parametrize("store", [[], ["--store=memory"]], ids=["sqlite", "memory"])
@pytest.mark.gen_test(timeout=60)
async def test_a_serving_process_is_ready(tmp_path, store):
    server = ChatProcess(tmp_path / "data", *store, log_path=tmp_path / "server.log")
    api = Api(server.url)
    try:
        await server.started()
        resp = await api.request("GET", "/readyz")
        assert resp.status == 200 and resp.json == {"ready": True}
    finally:
        api.close()
        server.kill()


@pytest.mark.gen_test(timeout=60)
async def test_a_process_whose_redis_stopped_is_not_ready_but_alive_and_ready_again_when_it_is_back(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()  # our own: this test stops it
    metrics_port = free_port()
    server = ChatServer(tmp_path, "p0", redis.url, f"--metrics-port={metrics_port}")
    api = Api(server.url)
    metrics = Api(f"http://127.0.0.1:{metrics_port}")
    try:
        await server.started()
        assert (await api.request("GET", "/readyz")).status == 200
        assert "obrolan_redis_up 1.0" in (await metrics.request("GET", "/metrics")).body.decode()
        redis.kill()
        resp = await api.request("GET", "/readyz")
        assert resp.status == 503 and resp.json["error"] == "not_ready", resp.body
        assert resp.json["detail"].startswith("the store does not answer")
        assert (await api.request("GET", "/healthz")).status == 200  # liveness: the process is fine
        scraped = (await metrics.request("GET", "/metrics")).body.decode()
        assert "obrolan_redis_up 0.0" in scraped and "obrolan_store_up 0.0" in scraped
        redis.start()  # the same port
        resp = await api.request("GET", "/readyz")
        assert resp.status == 200 and resp.json == {"ready": True}, resp.body
    finally:
        api.close()
        metrics.close()
        server.kill()
        redis.kill()


@pytest.mark.gen_test(timeout=60)
async def test_a_process_whose_sqlite_file_another_process_locked_is_not_ready_until_it_lets_go(tmp_path):
    metrics_port = free_port()
    server = ChatProcess(tmp_path / "data", f"--metrics-port={metrics_port}", log_path=tmp_path / "server.log")
    api = Api(server.url)
    metrics = Api(f"http://127.0.0.1:{metrics_port}")
    other = None
    try:
        await server.started()
        ani = await api.join("Ani", "kunci")
        assert (await api.request("GET", "/readyz")).status == 200
        assert "obrolan_store_up 1.0" in (await metrics.request("GET", "/metrics")).body.decode()
        # What a backup script or a `sqlite3` shell left in a transaction does: holds the write lock.
        other = sqlite3.connect(tmp_path / "data" / "obrolan.sqlite3", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        resp = await api.request("GET", "/readyz")
        assert resp.status == 503 and resp.json["error"] == "not_ready", resp.body
        assert resp.json["detail"] == ("the store does not answer: the history database cannot be written: "
                                       "the database is locked by another process")
        sent = await ani.post("tidak tersimpan")  # what readiness warns of: no message can be stored
        assert sent.status == 503 and sent.json["error"] == "store_error", sent.body
        assert (await api.request("GET", "/healthz")).status == 200  # liveness: the process is fine
        assert "obrolan_store_up 0.0" in (await metrics.request("GET", "/metrics")).body.decode()

        other.execute("ROLLBACK")
        resp = await api.request("GET", "/readyz")
        assert resp.status == 200 and resp.json == {"ready": True}, resp.body
        assert "obrolan_store_up 1.0" in (await metrics.request("GET", "/metrics")).body.decode()
        assert (await ani.post("tersimpan")).status == 201
    finally:
        if other is not None:
            other.close()
        api.close()
        metrics.close()
        server.kill()
