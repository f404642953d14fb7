"""Store benchmark: durable appends/s with group commit, and reading the last 50 of 1,000,000.

    python bench/store.py                      # the full run (fills a 1,000,000-event room)
    python bench/store.py --events 100000      # quicker
    python bench/store.py --dir /path/on/disk  # where the database goes (default: a temp dir)
    python bench/store.py --trickle            # only the steady trickle, linger off and on

Prints, for the SQLite store on a real file (WAL, synchronous=FULL: every commit fsyncs):
- durable appends/s with 1..N concurrent appenders, each awaiting its commit before sending
  the next (as a client awaiting its ack does), the commits made and the mean group size,
  and the append-to-commit latency p50/p99;
- a steady trickle (1,000 appends/s, each on its own, as 1,000 people each sending 1 msg/s): commits,
  CPU per append and ack latency with the busy-store linger (COMMIT_LINGER_S) off and on;
- the latency of reading the last 50 events of a room holding --events events: through the
  hub (its in-memory buffer: what a fresh client or a long-poll gets), and through the store
  directly after a cold open (new store, new connections), p50/p99 over many reads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import backends.sqlite.writer as sqlite_writer
from backends.memory import LocalBroker
from backends.sqlite.schema import read_before
from backends.sqlite.store import DB_FILE_NAME, SQLiteStore
from rooms import Backend, Hub, HubConfig, PresenceStore
from rooms.models import Draft

BIG_ROOM = "besar"
FILL_IN_FLIGHT = 2000  # concurrent appends while filling the big room
READS = 5000  # timed reads per figure


def percentile(samples_ns: list[int], q: float) -> float:
    """The q-th percentile, in microseconds."""
    ordered = sorted(samples_ns)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] / 1000


def summary(samples_ns: list[int]) -> str:
    return f"p50 {percentile(samples_ns, 50):8.1f} µs   p99 {percentile(samples_ns, 99):8.1f} µs"


async def appenders(data_dir: Path, concurrency: int, total: int, window_s: float) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    store = SQLiteStore(None, str(data_dir), commit_window_s=window_s)
    await store.start()
    rooms = [f"kamar-{i}" for i in range(min(concurrency, 10))]
    for room in rooms:
        await store.open_room(room, 10)
    latencies: list[int] = []
    per_appender = max(1, total // concurrency)

    async def appender(n: int) -> None:
        room = rooms[n % len(rooms)]
        for k in range(per_appender):
            draft = Draft("message", room, f"u{n}", f"pesan {k} dari {n}", f"s{n}", f"c{n}-{k}")
            start = time.perf_counter_ns()
            await store.append(draft)
            latencies.append(time.perf_counter_ns() - start)

    start = time.perf_counter()
    await asyncio.gather(*(appender(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - start
    done = per_appender * concurrency
    print(f"  {concurrency:5d} appenders  window {window_s * 1000:3.0f} ms: {done / elapsed:9.0f} appends/s  "
          f"{store.commits:6d} commits  {store.committed_appends / store.commits:6.1f} per commit  "
          f"append→commit {summary(latencies)}")
    await store.close()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def trickle(data_dir: Path, rate: float, seconds: float, linger: bool) -> None:
    """Appends started at a fixed rate, each awaited on its own: how many share a commit."""
    busy_s = sqlite_writer.LINGER_WHEN_BUSY_S
    sqlite_writer.LINGER_WHEN_BUSY_S = busy_s if linger else 0.0  # 0: the writer never lingers
    shutil.rmtree(data_dir, ignore_errors=True)
    store = SQLiteStore(None, str(data_dir))
    try:
        await store.start()
        for r in range(100):
            await store.open_room(f"r{r}", 10)
        latencies: list[int] = []

        async def one(i: int) -> None:
            start = time.perf_counter_ns()
            await store.append(Draft("message", f"r{i % 100}", f"u{i % 1000}", f"pesan {i}", f"s{i % 1000}", f"c{i}"))
            latencies.append(time.perf_counter_ns() - start)

        n = int(rate * seconds)
        tasks = []
        t0, cpu0, commits0 = time.perf_counter(), cpu_seconds(), store.commits
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the pacing of the trickle itself
            tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*tasks)
        cpu, commits = cpu_seconds() - cpu0, store.commits - commits0
        print(f"  linger {'on ' if linger else 'off'} {rate:,.0f} appends/s: {commits} commits for {n} appends "
              f"({n / commits:.2f} per commit), CPU {cpu / n * 1e6:.0f} µs per append (this process, the "
              f"writer thread included), ack {summary(latencies)}")
    finally:
        await store.close()
        sqlite_writer.LINGER_WHEN_BUSY_S = busy_s


async def fill(store: SQLiteStore, count: int) -> None:
    await store.open_room(BIG_ROOM, 10)
    sem = asyncio.Semaphore(FILL_IN_FLIGHT)

    async def one(i: int) -> None:
        async with sem:
            await store.append(Draft("message", BIG_ROOM, f"u{i % 50}", f"pesan nomor {i} " + "x" * (i % 80),
                                     f"s{i % 50}", f"c{i}"))

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - start
    print(f"  filled {count} events in {elapsed:.1f} s ({count / elapsed:.0f} appends/s, "
          f"{store.committed_appends / store.commits:.0f} per commit)")


async def timed(reads: int, make: Callable[[], Awaitable[object]]) -> list[int]:
    samples = []
    for _ in range(reads):
        start = time.perf_counter_ns()
        await make()
        samples.append(time.perf_counter_ns() - start)
    return samples


async def big_room(data_dir: Path, count: int) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
    store = SQLiteStore(None, str(data_dir))
    await store.start()
    await fill(store, count)
    await store.close()
    size_mb = (data_dir / DB_FILE_NAME).stat().st_size / 1e6
    print(f"  database file: {size_mb:.0f} MB")

    # Through the hub: a cold open loads the buffer (1000 newest) from disk once; reads come from memory.
    store = SQLiteStore(None, str(data_dir))
    await store.start()
    hub = Hub(Backend(store, LocalBroker(), PresenceStore()), HubConfig(buffer_size=1000))
    start = time.perf_counter_ns()
    room = await hub.room(BIG_ROOM)
    print(f"  hub: cold open of the room (1000 newest events into the buffer): "
          f"{(time.perf_counter_ns() - start) / 1e6:.2f} ms")
    last = room.buffer.last_id
    assert last == count, (last, count)
    tail = await hub.read(BIG_ROOM, None)
    assert [e.id for e in tail.events] == list(range(count - 49, count + 1))
    print(f"  hub: last 50 (no cursor)              "
          f"{summary(await timed(READS, lambda: hub.read(BIG_ROOM, None)))}")
    print(f"  hub: 50 after a cursor                "
          f"{summary(await timed(READS, lambda: hub.read(BIG_ROOM, last - 50)))}")
    print(f"  hub: page of 50 before the newest     "
          f"{summary(await timed(READS, lambda: hub.read_before(BIG_ROOM, last + 1, 50)))}")
    await store.close()

    # Through the store directly, after a cold open: a new store, new connections.
    store = SQLiteStore(None, str(data_dir))
    start = time.perf_counter_ns()
    await store.start()
    print(f"  store: cold start (open, check schema): {(time.perf_counter_ns() - start) / 1e6:.2f} ms")
    start = time.perf_counter_ns()
    first = await store.read_before(BIG_ROOM, count + 1, 50)
    print(f"  store: first read of the last 50 after the cold start: {(time.perf_counter_ns() - start) / 1e3:.0f} µs")
    assert [e.id for e in first] == list(range(count - 49, count + 1))
    print(f"  store: last 50                        "
          f"{summary(await timed(READS, lambda: store.read_before(BIG_ROOM, count + 1, 50)))}")
    print(f"  store: 50 after a cursor              "
          f"{summary(await timed(READS, lambda: store.read_after(BIG_ROOM, count - 50, 50)))}")
    rng = random.Random(7)
    print(f"  store: 50 before a random id          "
          f"{summary(await timed(READS, lambda: store.read_before(BIG_ROOM, rng.randint(51, count), 50)))}")
    await store.close()

    # The query alone, without the hop to a reader thread, for comparison.
    conn = sqlite3.connect(data_dir / DB_FILE_NAME)
    samples = []
    for _ in range(READS):
        start = time.perf_counter_ns()
        read_before(conn, BIG_ROOM, count + 1, 50)
        samples.append(time.perf_counter_ns() - start)
    conn.close()
    print(f"  SQL + events only (no thread hop)     {summary(samples)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the big room")
    parser.add_argument("--appends", type=int, default=20_000, help="appends per appenders figure")
    parser.add_argument("--appenders", default="1,10,100,1000", help="concurrent appenders, comma-separated")
    parser.add_argument("--trickle", action="store_true", help="only the steady trickle, linger off and on")
    parser.add_argument("--dir", default=None, help="folder for the databases (default: a temp dir)")
    args = parser.parse_args()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="obrolan-bench-"))
    print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}; databases in {base}")
    try:
        print("a steady trickle, each append on its own (off, on, off, on):")
        for linger in (False, True, False, True):
            await trickle(base / "trickle", 1000, 3, linger)
        if args.trickle:
            return
        print("durable appends (WAL, synchronous=FULL; each appender awaits its commit):")
        for concurrency in (int(c) for c in args.appenders.split(",")):
            total = args.appends if concurrency > 1 else min(args.appends, 2000)
            await appenders(base / "appends", concurrency, total, 0.0)
        await appenders(base / "appends", 100, args.appends, 0.002)
        print(f"reading the last 50 of a room holding {args.events} events:")
        await big_room(base / "big", args.events)
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
