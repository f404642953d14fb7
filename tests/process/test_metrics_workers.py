"""``--metrics-port`` with ``--processes=2``: one ``/metrics`` shows the sum over both workers.

The kernel hands each new connection to one worker; which one holds a socket is read from
``/proc`` (the worker's open sockets against the kernel's TCP table), so the test knows that
both workers have connections before it checks the sum.  Events are counted once, by the worker
that stored them, although Redis relays each one to the other worker as well."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.chatclient import Api, Socket, is_event
from tests.process.test_metrics import scrape, value
from tests.redis_helpers import ChatServer, free_port, wait_until

TIMEOUT_S = 90
MAX_SOCKETS = 40  # the kernel spreads connections over the workers; this many never all landed on one
MESSAGES = 12
CENSUS_DEADLINE_S = 15.0  # a worker writes its gauges every second (ops.CENSUS_PUBLISH_S)


def worker_pids(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def connection_owners(server_port: int, pids: list[int]) -> dict[int, int]:
    """Client port -> the pid holding the server's end of that TCP connection (IPv4 loopback)."""
    by_inode = {inode: pid for pid in pids for inode in socket_inodes(pid)}
    owners = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        inode = int(fields[9])
        if local_port == server_port and inode in by_inode:
            owners[remote_port] = by_inode[inode]
    return owners


def client_port(sock: Socket) -> int:
    stream = sock.conn.stream
    assert stream is not None and stream.socket is not None
    return stream.socket.getsockname()[1]


@pytest.mark.gen_test(timeout=TIMEOUT_S)
async def test_two_workers_show_the_sum_of_their_connections_events_and_deliveries(redis, tmp_path):
    metrics_port = free_port()
    server = ChatServer(tmp_path, "forked", redis.url, "--processes=2", f"--metrics-port={metrics_port}")
    api = Api(server.url)
    metrics = Api(f"http://127.0.0.1:{metrics_port}")
    socks: list[Socket] = []
    try:
        await server.started()
        assert server.proc is not None
        wait_until(lambda: len(worker_pids(server.proc.pid)) == 2, "two workers", server.proc)
        workers = worker_pids(server.proc.pid)
        ani = await api.join("Ani", "jumlah")
        # Ani's sockets (one session may hold several) until both workers hold some of them.
        held: dict[int, int] = {}
        while len(set(held.values())) < 2 and len(socks) < MAX_SOCKETS:
            sock = await ani.ws()
            await sock.handshake()
            socks.append(sock)
            owners = connection_owners(server.port, workers)
            held = {port: owners[port] for port in map(client_port, socks)}
        assert sorted(set(held.values())) == sorted(workers), f"all {len(socks)} sockets on one worker"

        # Each worker holds only its own sockets; the gauge is their sum (each writes it every second).
        deadline = asyncio.get_running_loop().time() + CENSUS_DEADLINE_S
        while True:
            before = await scrape(metrics)
            if (value(before, "obrolan_connections", transport="websocket") == len(socks)
                    or asyncio.get_running_loop().time() > deadline):
                break
        assert value(before, "obrolan_connections", transport="websocket") == len(socks)
        assert value(before, "obrolan_build_info", version="0.1.0", store="redis") == 1  # once, not per worker
        assert value(before, "obrolan_store_up") == 1 and value(before, "obrolan_redis_up") == 1

        for i in range(MESSAGES):  # over HTTP: the kernel hands these to either worker as well
            assert (await ani.post(f"pesan {i}")).status == 201
        last = f"pesan {MESSAGES - 1}"
        for sock in socks:  # every socket has them all (each worker got each event, from Redis or itself)
            await sock.recv_until(lambda f: is_event("message", "Ani")(f) and f["text"] == last)
        after = await scrape(metrics)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)
        assert moved("obrolan_events_total", type="message") == MESSAGES  # stored once: not once per worker
        assert moved("obrolan_store_append_seconds_count") == MESSAGES
        # Delivered where it happened: each worker counts the sockets it wrote to.
        assert moved("obrolan_deliveries_total", transport="websocket") == MESSAGES * len(socks)

        # A worker that dies (the parent starts another): its sockets leave the gauge, its counts stay.
        victim = workers[1]
        survivors = sum(1 for pid in held.values() if pid != victim)
        os.kill(victim, signal.SIGKILL)
        deadline = asyncio.get_running_loop().time() + CENSUS_DEADLINE_S
        while True:
            later = await scrape(metrics)  # waits in the port's backlog if the victim served /metrics
            if (value(later, "obrolan_connections", transport="websocket") == survivors
                    or asyncio.get_running_loop().time() > deadline):
                break
        assert value(later, "obrolan_connections", transport="websocket") == survivors
        assert value(later, "obrolan_events_total", type="message") == value(after, "obrolan_events_total",
                                                                              type="message")
    finally:
        for sock in socks:
            sock.close()
        api.close()
        metrics.close()
        server.kill()
