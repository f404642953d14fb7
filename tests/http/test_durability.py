"""Acknowledged means durable, with the in-process server on SQLite: a locked database refuses
sends with ``store_error`` and reads go on; retries over both transports at once store and
broadcast once.  The kill -9, read-only and full-disk cases need a real process: they are in
tests/process/test_durability.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

# -- locked (in-process server) ----------------------------------------------------------------


@pytest.mark.settings(store="sqlite")
@pytest.mark.gen_test(timeout=30)
async def test_locked_database_refuses_sends_and_reads_go_on(api, settings):
    ani = await api.join("Ani", "kunci")
    for i in range(3):
        assert (await ani.post(f"sebelum {i}")).status == 201
    sock = await ani.ws()
    _, replay, _ = await sock.handshake()  # connect (and store the join) before the lock
    newest = replay[-1]["id"]
    # Another process holds the write lock, as a backup tool or a second server would.
    locker = sqlite3.connect(Path(settings.data_dir) / "obrolan.sqlite3", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        await sock.send({"type": "message", "text": "via ws", "client_id": "ws-1"})
        resp = await ani.post("via http", client_id="http-1")
        assert resp.status == 503 and resp.json["error"] == "store_error"
        assert "locked" in resp.json["detail"]
        frame = await sock.recv()
        assert frame is not None and frame["type"] == "error" and frame["client_id"] == "ws-1", frame
        assert frame["error"] == "store_error"
        page = await ani.poll(before=newest + 1, limit=200)
        assert [e["id"] for e in page.json["events"]] == list(range(1, newest + 1))
        assert (await ani.poll(after=0, wait=0)).json["events"] == page.json["events"]
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    await sock.send({"type": "message", "text": "via ws", "client_id": "ws-1"})
    frame = await sock.recv_until(lambda f: f.get("client_id") == "ws-1")
    assert frame["type"] == "ack" and frame["id"] == newest + 1  # the failed writes took no id
    resp = await ani.post("via http", client_id="http-1")
    assert resp.status == 201 and resp.json["id"] == newest + 2
    sock.close()


# -- exactly once (in-process server) ---------------------------------------------------------


@pytest.mark.settings(store="sqlite", rate_limit=0)
@pytest.mark.gen_test(timeout=30)
async def test_retries_over_both_transports_at_once_store_and_broadcast_once(api):
    ani = await api.join("Ani", "sekali")
    budi = await api.join("Budi", "sekali")
    watcher = await budi.ws()
    await watcher.handshake()
    sock = await ani.ws()
    await sock.handshake()
    frame = {"type": "message", "text": "hanya sekali", "client_id": "k-1"}
    for _ in range(5):  # not waiting for the acks: they interleave with the HTTP retries
        await sock.send(frame)
    answers = await asyncio.gather(*(ani.post("hanya sekali", client_id="k-1") for _ in range(5)),
                                   *(ani.post("hanya sekali", headers={"Idempotency-Key": "k-1"}) for _ in range(5)))
    acks = [await sock.recv_until(lambda f: f["type"] in ("ack", "error")) for _ in range(5)]
    assert {a["type"] for a in acks} == {"ack"}, acks
    ids = {a["id"] for a in acks} | {r.json["id"] for r in answers}
    assert len(ids) == 1 and all(r.status == 201 for r in answers)
    retry_later = await ani.post("hanya sekali", client_id="k-1")  # alone in its batch, already stored
    assert retry_later.status == 201 and retry_later.json["id"] in ids
    assert (await ani.post("penutup")).status == 201
    seen = []
    while True:
        got = await watcher.recv_until(lambda f: f["type"] == "message")
        if got["text"] == "penutup":
            break
        seen.append(got)
    assert [m["text"] for m in seen] == ["hanya sekali"]  # broadcast once, too
    history = (await ani.poll(before=10**9, limit=200)).json["events"]
    assert [e["text"] for e in history if e["type"] == "message"] == ["hanya sekali", "penutup"]
    sock.close()
    watcher.close()
