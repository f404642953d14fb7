"""Fan-out benchmark: one server process, many clients in a room, deliveries counted at the receivers.

    python bench/fanout.py                  # Obrolan: 10/100/1000 WebSocket members + 10 long-polls,
                                            # at a fixed rate and at saturation
    python bench/fanout.py --suite          # every scenario of issue 6 against Obrolan, the plain-Tornado
                                            # baseline and (when Node.js is there) socket.io, with ratios
    python bench/fanout.py --suite --sections 6 --servers obrolan
                                            # event streams (SSE) beside WebSocket, 100 and 1,000 members
    python bench/fanout.py --transport sse  # the default run with SSE readers instead of WebSockets
    python bench/fanout.py --help

The server runs as a subprocess pinned to CPU 0; this process (the load
generator, bench/wsload.py) pins itself to CPU 1 and reports its own CPU share
so a result limited by the generator can be told apart.  Every run is bounded
in time and every process it starts is stopped (see bench/servers.py).
Numbers depend on what else the machine runs: the load average is printed
with each result.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyspy
from servers import SERVERS, Server, node_available
from wsload import Conn, DriveResult, Loader, percentile

SERVER_CPU = 0
LOADGEN_CPU = 1
PROBES_PER_ROOM = 8
POLL_PROBES = 50
# Long-poll saturation: events in flight per sender.  Each answer then carries many events, and
# the total stays well under the room buffer (1,000), past which a poll would be truncated.
LONGPOLL_WINDOW = 20
LONGPOLL_SENDERS = 20  # WebSocket members posting: events enter in parallel, as in a busy room
SSE_GOAL = 0.8  # issue 14: SSE fan-out within 80 % of WebSocket's deliveries/s


@dataclass
class Plan:
    server: str = "obrolan"
    rooms: int = 1
    members: int = 10  # live members per room (WebSockets, or event streams: see transport)
    transport: str = "ws"  # "ws", or "sse": every member but the senders (WebSockets) reads an event stream
    pollers: int = 0  # long-poll members per room
    senders: int = 1  # per room (they are members too)
    rate_eps: float | None = None  # events/s offered in total; None = saturation
    inflight: int = 20_000  # saturation: unacknowledged deliveries in all (sets each sender's window)
    window: int | None = None  # saturation: unacknowledged events per sender (overrides inflight)
    warmup_s: float = 1.0
    measure_s: float = 5.0
    pin: bool = True
    extra_args: tuple[str, ...] = ()
    label: str = ""
    all_probes: bool = False
    profile: Path | None = None  # record the server with py-spy into this file (collapsed stacks)
    profile_gil: bool = False  # py-spy samples only the thread holding the GIL (Python's CPU, not waits)
    threads: bool = False  # say how the server's CPU splits between its main thread and the others


@dataclass
class Outcome:
    plan: Plan
    result: DriveResult | None = None
    error: str = ""
    load: str = field(default_factory=lambda: load_average())
    thread_cpu: tuple[float, float] | None = None  # CPU seconds over the run: main thread, the others

    def line(self) -> str:
        p, r = self.plan, self.result
        head = f"{p.server:<14} {p.label:<34}"
        if r is None:
            return f"{head} FAILED: {self.error}"
        scpu = f"{r.server_cpu * 100:4.0f}%" if r.server_cpu is not None else "  ? "
        if r.server_cpu is not None and r.delivered + r.poll_delivered:
            # CPU time per delivery: steadier than the rate when other work shares the machine
            scpu += f" ({r.server_cpu * r.seconds * 1e6 / (r.delivered + r.poll_delivered):.2f} us/deliv)"
        polls = f" poll {r.poll_rate:>9,.0f} ev/s" if p.pollers else ""
        polls += f" sse {r.stream_rate:>10,.0f} ev/s" if p.transport == "sse" else ""
        return (f"{head} {r.rate:>10,.0f} deliv/s  p50 {r.pct_ms(0.5):7.2f} ms  p99 {r.pct_ms(0.99):7.2f} ms"
                f"{polls}  sent {r.sent / r.seconds:>8,.0f}/s  lost {r.lost}  gaps {r.gaps}  err {r.errors}"
                f"  closed {r.closed}  server {scpu}  loadgen {r.gen_cpu * 100:3.0f}%  load {self.load}"
                f"{self.threads_text()}")

    def threads_text(self) -> str:
        if not self.thread_cpu or not sum(self.thread_cpu):
            return ""
        main, others = self.thread_cpu
        return f"  threads: main {main * 100 / (main + others):.0f}%, others {others * 100 / (main + others):.0f}%"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def room_name(r: int) -> str:
    return f"bench{r}"


def spread(n: int, k: int) -> set[int]:
    """``k`` indices spread evenly over ``range(n)``."""
    return set(range(n)) if k >= n else {round(i * n / k) for i in range(k)}


def build(server: Server, plan: Plan, name_prefix: str = "u") -> tuple[list[Conn], list[Conn]]:
    ws: list[Conn] = []
    polls: list[Conn] = []
    n_ws, n_poll = plan.rooms * plan.members, plan.rooms * plan.pollers
    names = [f"{name_prefix}{i}" for i in range(n_ws + n_poll)]
    # Each user joins its own room (a room exists once somebody joined it; a socket to any other is a 404).
    rooms = [room_name(i // plan.members) for i in range(n_ws)] + \
        [room_name(i // plan.pollers) for i in range(n_poll)]
    tokens = server.tokens(names, rooms)
    it = iter(zip(names, tokens, strict=True))
    for r in range(plan.rooms):
        probes = spread(plan.members, plan.members if plan.all_probes else PROBES_PER_ROOM)
        for i in range(plan.members):
            name, token = next(it)
            if plan.transport == "sse" and i >= plan.senders:  # senders post, so they stay WebSockets
                c = Conn("sse", r, name, i in probes, server.events_path(room_name(r)) or "")
            else:
                c = Conn("ws", r, name, i in probes, server.ws_path(room_name(r), name))
            c.token, c.on_open = token, server.open_payload
            ws.append(c)
    for r in range(plan.rooms):
        path = server.poll_path(room_name(r))
        for j in range(plan.pollers):
            name, token = next(it)
            c = Conn("poll", r, name, plan.all_probes or j < POLL_PROBES, path or "")
            c.token = token
            polls.append(c)
    return ws, polls


def run(plan: Plan) -> Outcome:
    server = SERVERS[plan.server](SERVER_CPU if plan.pin else None, plan.extra_args)
    loader = None
    try:
        server.start()
        if plan.pollers and server.poll_path("x") is None:
            raise ValueError(f"{plan.server} has no long-poll transport")
        if plan.transport == "sse" and server.events_path("x") is None:
            raise ValueError(f"{plan.server} has no event stream")
        loader = Loader("127.0.0.1", server.port, server.message)
        ws, polls = build(server, plan)
        loader.open(ws)
        if polls:
            loader.open(polls)
        loader.quiesce()
        probes: dict[int, list[Conn]] = {}
        for c in loader.all:
            if c.probe:
                probes.setdefault(c.room, []).append(c)
        loader.add_senders([c for i, c in enumerate(ws) if i % plan.members < plan.senders], probes)
        window = plan.window or max(1, plan.inflight // ((plan.members + plan.pollers) * plan.senders))
        spy = None
        if plan.profile is not None and server.proc is not None:
            spy = pyspy.start(server.proc.pid, plan.warmup_s + plan.measure_s, plan.profile,
                              rate_hz=1000 if plan.profile_gil else 250, gil=plan.profile_gil)
        threads_before = server.thread_cpu_seconds() if plan.threads and server.proc is not None else None
        result = loader.drive(plan.measure_s, plan.warmup_s, rate_eps=plan.rate_eps, window=window,
                              server_cpu=server.cpu_seconds)
        split = None
        if threads_before is not None and server.proc is not None:  # warm-up included: a share, not a rate
            after, pid = server.thread_cpu_seconds(), server.proc.pid
            spent = {tid: cpu - threads_before.get(tid, 0.0) for tid, cpu in after.items()}
            split = (spent.get(pid, 0.0), sum(cpu for tid, cpu in spent.items() if tid != pid))
        if spy is not None:
            spy.wait(30)
        if loader.failed:
            raise ConnectionError(f"{len(loader.failed)} connections failed: {loader.failed[0]}")
        return Outcome(plan, result, thread_cpu=split)
    except Exception as exc:  # report and go on with the other scenarios
        return Outcome(plan, error=f"{type(exc).__name__}: {exc}\n{server.log_tail(8)}")
    finally:
        if loader is not None:
            loader.close_all()
        server.stop()


def median_outcome(outcomes: list[Outcome], key: Callable[[DriveResult], float] | None = None) -> Outcome:
    """The run in the middle by ``key`` (by default the delivery rate: saturation runs); a
    fixed-rate run passes the figure it reports (CPU per delivery, p99), whose median it is."""
    good = [(o, o.result) for o in outcomes if o.result is not None]
    if not good:
        return outcomes[0]
    good.sort(key=lambda pair: key(pair[1]) if key is not None
              else pair[1].rate if not pair[0].plan.pollers else pair[1].poll_rate)
    return good[len(good) // 2][0]


def repeat(plan: Plan, runs: int, verbose: bool = True,
           key: Callable[[DriveResult], float] | None = None) -> Outcome:
    outs = []
    for i in range(runs):
        o = run(plan)
        if verbose:
            print(f"  run {i + 1}: " + o.line(), flush=True)
        outs.append(o)
    return median_outcome(outs, key)


# -- scenarios that are not a plain drive ----------------------------------------------


def idle_memory(server_name: str, sockets: int, rooms: int, pin: bool, extra: tuple[str, ...]) -> str:
    """Server RSS growth per idle WebSocket."""
    server = SERVERS[server_name](SERVER_CPU if pin else None, extra)
    loader = None
    try:
        server.start()
        loader = Loader("127.0.0.1", server.port, server.message)
        plan = Plan(server=server_name, rooms=rooms, members=sockets // rooms)
        ws, _ = build(server, plan, name_prefix="idle")
        for c in ws:
            c.probe = False
        time.sleep(0.5)  # let the server settle after the joins before the baseline
        before = server.rss_kib()
        loader.open(ws, concurrency=100, deadline_s=300)
        loader.quiesce(0.5)
        after = server.rss_kib()
        per = (after - before) / len(ws)
        return (f"{server_name:<14} {len(ws):,} idle WebSockets in {rooms} rooms: RSS {before:,} -> {after:,} KiB,"
                f" {per:.1f} KiB each  load {load_average()}")
    except Exception as exc:
        return f"{server_name:<14} idle WebSockets FAILED: {type(exc).__name__}: {exc}\n{server.log_tail(8)}"
    finally:
        if loader is not None:
            loader.close_all()
        server.stop()


def settle(loader: Loader, server: Server, limit_s: float = 10.0) -> None:
    """Read until the server has been idle for 100 ms (its CPU time stopped growing)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        before = server.cpu_seconds()
        t = time.monotonic() + 0.1
        while time.monotonic() < t:
            loader.pump(0.01)
        if server.cpu_seconds() - before < 0.002:
            return


def poll_answer_latency(pollers: int, events: int, pin: bool, extra: tuple[str, ...],
                        server_name: str = "obrolan", profile: Path | None = None) -> str:
    """With ``pollers`` long-polls waiting, post one event and time every answer.  With ``profile``,
    py-spy records the server over the measured events (the answers and the polls that follow them)
    into that file, and its summary follows the line."""
    server = SERVERS[server_name](SERVER_CPU if pin else None, extra)
    loader = None
    try:
        server.start()
        loader = Loader("127.0.0.1", server.port, server.message)
        ws, polls = build(server, Plan(members=1, pollers=pollers, all_probes=True), name_prefix="w")
        loader.open(ws)
        loader.open(polls, concurrency=100)
        loader.quiesce(0.5)
        loader.add_senders(ws, {0: polls})
        sender = loader.senders[0]
        firsts, lasts, all_lat = [], [], []
        cpu_busy = 0.0
        spy = None
        if profile is not None and server.proc is not None:
            settle(loader, server)
            spy = pyspy.start(server.proc.pid, 600, profile)
            time.sleep(1.0)  # py-spy attaches
        for _ in range(events):
            settle(loader, server)  # every poll is back and waiting
            loader.latencies = []
            loader.measuring = True
            cpu0 = server.cpu_seconds()
            loader.send(sender)
            end = time.monotonic() + 5.0
            while sender.acked() < sender.seq and time.monotonic() < end:
                loader.pump(0.01)
            cpu_busy += server.cpu_seconds() - cpu0
            loader.measuring = False
            lat = sorted(loader.latencies)
            if len(lat) < pollers:
                raise RuntimeError(f"only {len(lat)} of {pollers} polls answered within 5 s")
            firsts.append(lat[0])
            lasts.append(lat[-1])
            all_lat.extend(lat)
        all_lat.sort()
        summary = ""
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
            spy.wait(30)
            summary = "\n" + pyspy.summarise(profile) if profile is not None and profile.exists() else ""
        med = statistics.median
        return (f"{server_name:<14} {pollers} waiting long-polls, one event ({events} times): first answer "
                f"{med(firsts) / 1000:.2f} ms, p50 {percentile(all_lat, 0.5) / 1000:.2f} ms, "
                f"p99 {percentile(all_lat, 0.99) / 1000:.2f} ms, last {med(lasts) / 1000:.2f} ms (medians); "
                f"server CPU {cpu_busy * 1e6 / (pollers * events):.0f} us per answer"
                f"  load {load_average()}{summary}")
    except Exception as exc:
        return f"{server_name:<14} long-poll answer latency FAILED: {type(exc).__name__}: {exc}\n{server.log_tail(8)}"
    finally:
        if loader is not None:
            loader.close_all()
        server.stop()


# -- entry points ----------------------------------------------------------------------


def machine() -> str:
    return (f"{platform.node()} {platform.machine()} nproc={os.cpu_count()} python={platform.python_version()}"
            f" load {load_average()}")


def default_run(args: argparse.Namespace) -> None:
    extra = tuple(args.server_arg)
    for n in args.members:
        for label, rate in ((f"{n} ws + {args.longpoll} poll, fixed", args.rate / (n + args.longpoll)), (f"{n} ws + "
                            f"{args.longpoll} poll, saturation", None)):
            plan = Plan(server="obrolan", members=n, pollers=args.longpoll, senders=min(n, args.senders),
                        rate_eps=rate, measure_s=args.duration, pin=not args.no_pin, extra_args=extra,
                        label=label.replace("ws", args.transport), inflight=args.inflight,
                        transport=args.transport)
            print(repeat(plan, args.runs, verbose=args.runs > 1).line(), flush=True)


def suite(args: argparse.Namespace) -> None:
    extra = tuple(args.server_arg)
    pin = not args.no_pin
    servers = [s for s in args.servers if s != "socketio" or node_available()]
    if "socketio" in args.servers and "socketio" not in servers:
        print("socketio: skipped (node/npm not found)")
    sat: dict[tuple[str, int], Outcome] = {}
    if 1 in args.sections:
        sat = saturation_section(args, servers, extra, pin)
    if 2 in args.sections:
        latency_section(args, servers, sat, extra, pin)
    if 3 in args.sections:
        rooms_section(args, servers, extra, pin)
    if 4 in args.sections:
        idle_section(args, servers, extra, pin)
    if 5 in args.sections:
        longpoll_section(args, servers, extra, pin)
    if 6 in args.sections:
        stream_section(args, servers, extra, pin)


def saturation_section(args: argparse.Namespace, servers: list[str], extra: tuple[str, ...],
                       pin: bool) -> dict[tuple[str, int], Outcome]:
    sat: dict[tuple[str, int], Outcome] = {}
    print(f"\n== 1. one room, saturation ({args.senders} senders, {args.inflight:,} deliveries in flight),"
          f" median of {args.runs}")
    for n in args.members:
        for s in servers:
            plan = Plan(server=s, members=n, senders=min(n, args.senders), inflight=args.inflight,
                        measure_s=args.duration, pin=pin, extra_args=extra if s.startswith("obrolan") else (),
                        label=f"{n} members, saturation")
            sat[(s, n)] = o = repeat(plan, args.runs)
            print("median  " + o.line(), flush=True)
    print("\n== ratios (same run, medians)")
    for n in args.members:
        rates = {s: result.rate for s in servers if (result := sat[(s, n)].result)}
        ours = [s for s in rates if s.startswith("obrolan")]
        parts = [f"{a}/{b} = {rates[a] / rates[b]:.2f}x" for a in ours for b in rates if b not in ours]
        print(f"{n:>5} members: " + ", ".join(parts))
    return sat


def latency_section(args: argparse.Namespace, servers: list[str], sat: dict[tuple[str, int], Outcome],
                    extra: tuple[str, ...], pin: bool) -> None:
    print("\n== 2. latency at a fixed rate")
    for s in servers:
        one = Plan(server=s, members=1000, senders=10, rate_eps=100, measure_s=args.duration, pin=pin,
                   extra_args=extra if s.startswith("obrolan") else (), label="1000 members @ 100k deliv/s")
        print(run(one).line(), flush=True)
        own = sat.get((s, 100))
        if own is not None and own.result is not None:
            half = own.result.rate / 2
            plan = Plan(server=s, members=100, senders=10, rate_eps=half / 100, measure_s=args.duration,
                        pin=pin, extra_args=extra if s.startswith("obrolan") else (),
                        label=f"100 members @ {half / 1000:.0f}k (half sat)")
            print(run(plan).line(), flush=True)



def rooms_section(args: argparse.Namespace, servers: list[str], extra: tuple[str, ...], pin: bool) -> None:
    print("\n== 3. 100 rooms x 10 members, 40k deliveries/s offered")
    for s in servers:
        plan = Plan(server=s, rooms=100, members=10, senders=1, rate_eps=4000, measure_s=args.duration,
                    pin=pin, extra_args=extra if s.startswith("obrolan") else (), label="100 rooms x 10 @ 40k",
                    all_probes=True)
        print(run(plan).line(), flush=True)



def idle_section(args: argparse.Namespace, servers: list[str], extra: tuple[str, ...], pin: bool) -> None:
    print(f"\n== 4. {args.idle:,} idle WebSockets")
    for s in servers:
        print(idle_memory(s, args.idle, max(1, args.idle // 100), pin, extra if s.startswith("obrolan") else ()),
              flush=True)



def longpoll_section(args: argparse.Namespace, servers: list[str], extra: tuple[str, ...], pin: bool) -> None:
    print("\n== 5. long-poll (Obrolan only)")
    for s in (s for s in servers if s.startswith("obrolan")):
        plan = Plan(server=s, members=LONGPOLL_SENDERS, pollers=1000, senders=LONGPOLL_SENDERS,
                    window=LONGPOLL_WINDOW, measure_s=args.duration, pin=pin, extra_args=extra,
                    label="1000 long-polls, saturation")
        print(run(plan).line(), flush=True)
        print(poll_answer_latency(1000, 20, pin, extra, s), flush=True)

def stream_section(args: argparse.Namespace, servers: list[str], extra: tuple[str, ...], pin: bool) -> None:
    """Event streams (SSE) beside WebSockets: the same room, members and senders (WebSockets), at
    saturation; every other member reads an event stream instead of a WebSocket."""
    print(f"\n== 6. event streams (SSE) beside WebSocket, saturation, median of {args.runs}"
          f" (goal: SSE at least {SSE_GOAL:.0%} of WebSocket's deliveries/s)")
    for s in (s for s in servers if s.startswith("obrolan")):
        for n in (n for n in args.members if n >= 100):
            rates = {}
            for transport in ("ws", "sse"):
                plan = Plan(server=s, members=n, senders=min(n, args.senders), inflight=args.inflight,
                            measure_s=args.duration, pin=pin, extra_args=extra, transport=transport,
                            label=f"{n} members ({transport}), saturation")
                o = repeat(plan, args.runs)
                print("median  " + o.line(), flush=True)
                rates[transport] = o.result.rate if o.result else None
            if rates["ws"] and rates["sse"]:
                ratio = rates["sse"] / rates["ws"]
                print(f"{n:>5} members: sse/ws = {ratio:.2f}x ({'meets' if ratio >= SSE_GOAL else 'misses'}"
                      f" the {SSE_GOAL:.0%} goal)", flush=True)


def profile(args: argparse.Namespace) -> None:
    """Obrolan at saturation under py-spy: where the server's time goes per delivery."""
    if not pyspy.available():
        sys.exit("--profile needs py-spy: pip install py-spy")
    out_dir = Path(args.profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = {"measure_s": args.duration, "pin": not args.no_pin, "extra_args": tuple(args.server_arg)}
    plans = []
    if 1 in args.sections:
        plans += [Plan(members=n, senders=min(n, args.senders), inflight=args.inflight,
                       label=f"{n} members, saturation", profile=out_dir / f"obrolan-{n}.raw", **common)
                  for n in args.members]
    if 3 in args.sections:
        plans.append(Plan(rooms=100, members=10, senders=1, rate_eps=4000, all_probes=True,
                          label="100 rooms x 10 @ 40k", profile=out_dir / "obrolan-rooms.raw", **common))
    if 5 in args.sections and args.longpoll:
        plans.append(Plan(members=LONGPOLL_SENDERS, pollers=args.longpoll, senders=LONGPOLL_SENDERS,
                          window=LONGPOLL_WINDOW, label=f"{args.longpoll} long-polls, saturation",
                          profile=out_dir / f"obrolan-poll{args.longpoll}.raw", **common))
    for plan in plans:
        outcome = run(plan)
        print(outcome.line(), flush=True)
        if plan.profile is not None and plan.profile.exists():
            print(pyspy.summarise(plan.profile), "\n", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", action="store_true", help="run every scenario against every server")
    ap.add_argument("--sections", type=lambda s: {int(x) for x in s.split(",")}, default={1, 2, 3, 4, 5},
                    help="suite: which sections to run (1 saturation, 2 latency, 3 rooms, 4 idle, 5 long-poll,"
                         " 6 event streams beside WebSocket)")
    ap.add_argument("--servers", type=lambda s: s.split(","),
                    default=["obrolan", "obrolan-uvloop", "tornado", "socketio"],
                    help="servers to compare (suite): obrolan, obrolan-uvloop, tornado, socketio")
    ap.add_argument("--members", type=lambda s: [int(x) for x in s.split(",")], default=[10, 100, 1000])
    ap.add_argument("--longpoll", type=int, default=10, help="long-poll members (default run)")
    ap.add_argument("--transport", choices=("ws", "sse"), default="ws",
                    help="default run: members read WebSockets or event streams (SSE); senders stay WebSockets")
    ap.add_argument("--rate", type=float, default=20_000, help="deliveries/s offered (default run, fixed rate)")
    ap.add_argument("--senders", type=int, default=10, help="senders per room")
    ap.add_argument("--inflight", type=int, default=20_000,
                    help="saturation: unacknowledged deliveries in all (each sender's window follows from it)")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    ap.add_argument("--runs", type=int, default=1, help="runs per scenario (the median is kept)")
    ap.add_argument("--idle", type=int, default=10_000, help="idle WebSockets (suite)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and generator to CPUs")
    ap.add_argument("--profile", metavar="DIR", help="Obrolan at saturation under py-spy; summaries printed, "
                    "collapsed stacks kept in DIR")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="extra option for chat.py, e.g. --server-arg=--event-loop=uvloop")
    args = ap.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it too
    cpus = os.cpu_count()
    if not args.no_pin and cpus and cpus > LOADGEN_CPU:
        os.sched_setaffinity(0, {LOADGEN_CPU})
    else:
        args.no_pin = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop the servers
    print(machine())
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]), flush=True)
    if args.profile:
        profile(args)
    elif args.suite:
        suite(args)
    else:
        default_run(args)


if __name__ == "__main__":
    main()
