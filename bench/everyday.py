"""The everyday load (issue 10): Obrolan beside socket.io, each goal's figure and ratio in one run.

    python bench/everyday.py                      # every goal, Obrolan (defaults: SQLite store,
                                                  # rate limit on) beside socket.io
    python bench/everyday.py --goals 1,6 --runs 3 # some goals, median of 3 runs each
    python bench/everyday.py --server-arg=--event-loop=uvloop
    python bench/everyday.py --goals 1 --obrolan-only --threads --profile /tmp/prof
                                                  # where Obrolan's CPU goes: event loop vs SQLite
                                                  # writer thread, and py-spy's summary

Goals (issue 10), each printed with Obrolan's figure, socket.io's, and whether it is met:
1. 100 rooms x 10 members, each sends 1 msg/s (10,000 deliveries/s offered): server CPU per delivery
   <= socket.io's.
2. the same at 4 msg/s each (40,000 deliveries/s): nothing lost, p99 < 20 ms and <= socket.io's.
3. 1 room x 1,000 members at a fixed 50 msg/s (50,000 deliveries/s): p99 <= socket.io's.
4. saturation fan-out, 1 room x 100 and x 1,000: >= 5x socket.io's deliveries/s; 10,000 idle
   WebSockets < 17 KiB each.
5. 1,000 members joining one room: user-list (presence) frames sent grow as N, not N^2.
6. 1,000 waiting long-polls, one event: the first answered within 5 ms, all within 20 ms.

Obrolan runs as a user runs it (goal 7): the SQLite store (bench/servers.py starts the memory store
for the fan-out bench; this bench passes --store=sqlite) and the default rate limit (5 msg/s per user,
so each member sends at most 4 msg/s here; goal 4, a capacity figure, lifts it).  Server pinned to
CPU 0, load generator to CPU 1, as in bench/fanout.py, whose scenarios this reuses.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyspy
from fanout import LOADGEN_CPU, SERVER_CPU, Outcome, Plan, idle_memory, machine, poll_answer_latency, repeat
from servers import SERVERS, node_available
from wsload import DriveResult

OBROLAN_DEFAULTS = ("--store=sqlite", "--rate-limit=5")  # after bench/servers.py's own: these win
CPU_RATIO_GOAL = 1.0
P99_GOAL_MS = 20.0
SATURATION_GOAL = 5.0
IDLE_GOAL_KIB = 17.0
POLL_FIRST_GOAL_MS = 5.0
POLL_ALL_GOAL_MS = 20.0
STORM_MEMBERS = 1000
STORM_CONCURRENCY = 50  # WebSocket handshakes in flight during the storm
STORM_QUIET_S = 0.5  # the storm is over when nothing arrived for this long


def verdict(ok: bool) -> str:
    return "MET" if ok else "missed"


def cpu_per_delivery_us(r: DriveResult) -> float:
    """Server CPU per delivered event (µs): goal 1's figure, and the key of its median run
    (infinite when the CPU was not read or nothing was delivered)."""
    return r.server_cpu * r.seconds * 1e6 / r.delivered if r.server_cpu is not None and r.delivered else math.inf


def p99_ms(r: DriveResult) -> float:
    """Goals 2 and 3's figure, and the key of their median run."""
    return r.pct_ms(0.99)


def us_per_delivery(o: Outcome) -> float | None:
    value = cpu_per_delivery_us(o.result) if o.result is not None else math.inf
    return None if math.isinf(value) else value


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.extra = (*OBROLAN_DEFAULTS, *args.server_arg)
        self.servers = ["obrolan"] + (["socketio"] if node_available() and not args.obrolan_only else [])
        self.pin = not args.no_pin

    def plan(self, server: str, extra: tuple[str, ...] = (), goal: int = 0, **kw: object) -> Plan:
        ours = server == "obrolan"
        profile = self.profile_path(goal) if ours and goal else None
        return Plan(server=server, measure_s=self.args.duration, pin=self.pin,
                    extra_args=(*self.extra, *extra) if ours else (), threads=ours and self.args.threads,
                    profile=profile, profile_gil=True, **kw)  # type: ignore[arg-type]

    def profile_path(self, goal: int) -> Path | None:
        return Path(f"{self.args.profile}-goal{goal}.raw") if self.args.profile else None

    def both(self, extra: tuple[str, ...] = (), goal: int = 0, key: Callable[[DriveResult], float] | None = None,
             **kw: object) -> dict[str, Outcome]:
        """Each server's run (with ``--runs N``, the median one by ``key``: the goal's own figure)."""
        out = {}
        for s in self.servers:
            out[s] = o = repeat(self.plan(s, extra, goal, **kw), self.args.runs, verbose=self.args.runs > 1, key=key)
            print("  " + o.line(), flush=True)
        profile = self.profile_path(goal) if goal else None
        if profile is not None and profile.exists():
            print(f"  obrolan profile (py-spy --gil: Python's CPU, the thread holding the GIL), {profile}:")
            print(pyspy.summarise(profile))
        return out

    # -- the goals ---------------------------------------------------------------------

    def goal1(self) -> None:
        print("\n== goal 1: 100 rooms x 10, each member 1 msg/s (10,000 deliveries/s offered): CPU per delivery")
        got = self.both(goal=1, key=cpu_per_delivery_us, rooms=100, members=10, senders=10, rate_eps=1000,
                        all_probes=True, label="100 rooms x 10 @ 10k")
        cost = {s: us_per_delivery(o) for s, o in got.items()}
        self.ratio("goal 1", "server CPU per delivery", cost, "us", lambda r: r <= CPU_RATIO_GOAL, "<= 1x")

    def goal2(self) -> None:
        print("\n== goal 2: 100 rooms x 10, each member 4 msg/s (40,000 deliveries/s offered): p99")
        got = self.both(goal=2, key=p99_ms, rooms=100, members=10, senders=10, rate_eps=4000, all_probes=True,
                        label="100 rooms x 10 @ 40k")
        self.latency_goal("goal 2", got, absolute_ms=P99_GOAL_MS)

    def goal3(self) -> None:
        print("\n== goal 3: 1 room x 1,000 at a fixed 50 msg/s (50,000 deliveries/s): p99")
        got = self.both(goal=3, key=p99_ms, members=1000, senders=20, rate_eps=50, label="1000 members @ 50k")
        self.latency_goal("goal 3", got, absolute_ms=None)

    def goal4(self) -> None:
        print(f"\n== goal 4: saturation, 1 room (median of {self.args.runs}); idle WebSockets")
        for n in (100, 1000):
            # Capacity: ten senders as fast as the server takes them, so the per-user rate limit is off.
            got = self.both(("--rate-limit=0",), members=n, senders=10, inflight=20_000,
                            label=f"{n} members, saturation")
            rates = {s: o.result.rate if o.result else None for s, o in got.items()}
            self.ratio(f"goal 4 ({n})", "deliveries/s", rates, "/s", lambda r: r >= SATURATION_GOAL,
                       f">= {SATURATION_GOAL:g}x")
        line = idle_memory("obrolan", self.args.idle, max(1, self.args.idle // 100), self.pin, self.extra)
        print("  " + line)
        kib = float(line.split(" KiB each")[0].rsplit(" ", 1)[1]) if " KiB each" in line else None
        ok = kib is not None and kib < IDLE_GOAL_KIB
        print(f"goal 4 (idle): {kib} KiB per idle WebSocket (goal < {IDLE_GOAL_KIB:g}): {verdict(ok)}")

    def goal5(self) -> None:
        print(f"\n== goal 5: {STORM_MEMBERS:,} members join one room (WebSockets, {STORM_CONCURRENCY} at a time)")
        server = SERVERS["obrolan"](SERVER_CPU if self.pin else None, self.extra)
        try:
            server.start()
            tokens = server.tokens([f"s{i}" for i in range(STORM_MEMBERS)], ["storm"] * STORM_MEMBERS)
            counts = asyncio.run(join_storm(server.port, server.ws_path("storm", ""), tokens))
        finally:
            server.stop()
        n = STORM_MEMBERS
        print(f"  obrolan: {counts['presence']:,} user-list frames, {counts['join']:,} join events delivered, "
              f"{counts['bytes'] / 1e6:.1f} MB in {counts['seconds']:.1f} s")
        ok = counts["presence"] <= 2 * n
        print(f"goal 5: user-list frames {counts['presence']:,} for {n:,} joins = {counts['presence'] / n:.2f} per "
              f"member (O(N); N^2 would be {n * n:,}); join deltas {counts['join']:,} = N(N-1)/2 "
              f"{n * (n - 1) // 2:,} (each member told of each later join): {verdict(ok)}")

    def goal6(self) -> None:
        events = self.args.poll_events
        print(f"\n== goal 6: 1,000 waiting long-polls, one event ({events} times)")
        line = poll_answer_latency(1000, events, self.pin, self.extra, profile=self.profile_path(6))
        print("  " + line)
        line = line.splitlines()[0]
        try:
            first = float(line.split("first answer ")[1].split(" ms")[0])
            last = float(line.split("last ")[1].split(" ms")[0])
        except (IndexError, ValueError):
            print("goal 6: no figure (the run failed)")
            return
        ok = first <= POLL_FIRST_GOAL_MS and last <= POLL_ALL_GOAL_MS
        print(f"goal 6: first answer {first:.2f} ms (goal {POLL_FIRST_GOAL_MS:g}), last {last:.2f} ms "
              f"(goal {POLL_ALL_GOAL_MS:g}): {verdict(ok)}")

    # -- printing ----------------------------------------------------------------------

    def ratio(self, goal: str, what: str, figures: dict[str, float | None], unit: str, good, goal_text: str) -> None:
        ours, theirs = figures.get("obrolan"), figures.get("socketio")
        shown = ", ".join(f"{s} {v:,.2f} {unit}" if v is not None else f"{s} failed" for s, v in figures.items())
        if ours is None or theirs is None:
            print(f"{goal}: {what}: {shown} (no ratio)")
            return
        r = ours / theirs
        print(f"{goal}: {what}: {shown}; obrolan/socketio = {r:.2f}x (goal {goal_text}): {verdict(good(r))}")

    def latency_goal(self, goal: str, got: dict[str, Outcome], absolute_ms: float | None) -> None:
        p99 = {s: o.result.pct_ms(0.99) if o.result else None for s, o in got.items()}
        ours = got["obrolan"].result
        lost = ours.lost if ours else None
        shown = ", ".join(f"{s} p99 {v:.2f} ms" if v is not None else f"{s} failed" for s, v in p99.items())
        ok = ours is not None and lost == 0 and ours.gaps == 0
        if absolute_ms is not None:
            ok = ok and p99["obrolan"] is not None and p99["obrolan"] < absolute_ms
        ours_p99, theirs_p99 = p99["obrolan"], p99.get("socketio")
        if ours_p99 is not None and theirs_p99 is not None:
            ok = ok and ours_p99 <= theirs_p99
            shown += f"; obrolan/socketio = {ours_p99 / theirs_p99:.2f}x"
        limit = f"< {absolute_ms:g} ms and " if absolute_ms is not None else ""
        print(f"{goal}: {shown}; obrolan lost {lost} (goal: nothing lost, p99 {limit}<= socket.io's): {verdict(ok)}")


async def join_storm(port: int, path: str, tokens: list[str | None]) -> dict[str, float]:
    """Open a WebSocket per token (each a new member of the room) and count, in every byte every
    member receives, the user-list frames and the join events, until the room is quiet."""
    counts = {"presence": 0, "join": 0, "bytes": 0}
    last_rx = [time.monotonic()]
    gate = asyncio.Semaphore(STORM_CONCURRENCY)
    writers: list[asyncio.StreamWriter] = []
    all_open, arrived = asyncio.Event(), asyncio.Event()

    async def member(token: str | None) -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"handshake refused: {head[:100]!r}")
            if len(writers) == len(tokens):
                all_open.set()
        carry = b""
        while True:
            data = await reader.read(65536)
            if not data:
                return
            last_rx[0] = time.monotonic()
            arrived.set()
            both = carry + data
            counts["presence"] += both.count(b'"type":"presence"') - carry.count(b'"type":"presence"')
            counts["join"] += both.count(b'"type":"join"') - carry.count(b'"type":"join"')
            counts["bytes"] += len(data)
            carry = both[-24:]

    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(member(t)) for t in tokens]
    await all_open.wait()
    while True:  # until nothing arrives for STORM_QUIET_S
        arrived.clear()
        try:
            await asyncio.wait_for(arrived.wait(), STORM_QUIET_S)
        except TimeoutError:
            break
    seconds = last_rx[0] - t0
    for w in writers:
        w.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {**counts, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--goals", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3, 4, 5, 6])
    ap.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    ap.add_argument("--runs", type=int, default=1, help="runs per scenario (the median is kept)")
    ap.add_argument("--idle", type=int, default=10_000, help="idle WebSockets (goal 4)")
    ap.add_argument("--obrolan-only", action="store_true", help="do not run socket.io")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and generator to CPUs")
    ap.add_argument("--server-arg", action="append", default=[], help="extra option for chat.py")
    ap.add_argument("--poll-events", type=int, default=20, help="goal 6: events posted (each answers 1,000 polls)")
    ap.add_argument("--profile", metavar="PREFIX",
                    help="record Obrolan with py-spy in goals 1-3 (--gil: Python's CPU) and 6 into "
                         "PREFIX-goalN.raw (collapsed stacks) and print a summary of each")
    ap.add_argument("--threads", action="store_true",
                    help="goals 1-4: say how Obrolan's CPU splits between its event loop (main thread) and the "
                         "others (the SQLite writer)")
    args = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cpus = os.cpu_count()
    if not args.no_pin and cpus and cpus > LOADGEN_CPU:
        os.sched_setaffinity(0, {LOADGEN_CPU})
    else:
        args.no_pin = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(machine())
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]), flush=True)
    bench = Bench(args)
    if "socketio" not in bench.servers:
        print("socket.io: not run (--obrolan-only, or node/npm not found): no ratios")
    for g in args.goals:
        getattr(bench, f"goal{g}")()


if __name__ == "__main__":
    main()
