"""Scale-out benchmark: delivered events/s with one and with two processes on Redis, same load.

    python bench/scale.py                 # 100 and 1000 members, saturation, median of 3 runs
    python bench/scale.py --members 100 --runs 5 --duration 5

It starts its own redis-server (free port, no persistence) and, for each case, the
server as ``python chat.py --redis-url=... --processes=N`` (workers share one port;
the kernel hands each new connection to one of them), then drives it with the load
generator of bench/fanout.py (bench/wsload.py): WebSocket members in one room, a few
of them sending as fast as the deliveries are acknowledged.  For reference it also
runs one process without Redis (``--store=memory``).  The CPU figure is the sum over
the server's processes.  Nothing is pinned: the workers, Redis and the load generator
share the machine's cores, so on a small machine the generator and Redis compete
with the workers; the load average is printed with each line.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout import Outcome, Plan, machine, repeat
from servers import SERVERS, Obrolan, free_port


class ScaledObrolan(Obrolan):
    """Obrolan whose CPU is counted over the parent and its worker processes."""

    kind = "scaled"

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        pids = [self.proc.pid]
        try:
            pids += [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        except OSError:
            pass
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / 100.0  # CLK_TCK
        return total

    def start(self) -> ScaledObrolan:
        # Every run starts from an empty Redis: the previous run's users still hold their names
        # there (until grace + expiry), and its events would only make the room bigger.
        for arg in self.extra_args:
            if arg.startswith("--redis-url="):
                subprocess.run(["redis-cli", "-u", arg.split("=", 1)[1], "FLUSHALL"], capture_output=True, check=True)
        super().start()
        time.sleep(0.5)  # the port opens before the workers have started their loops
        return self


SERVERS["scaled"] = ScaledObrolan


class Redis:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="obrolan-bench-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Redis:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)  # waiting for an external process to start
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return out.stdout.strip()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def case(label: str, extra: tuple[str, ...], members: int, args: argparse.Namespace) -> Outcome:
    plan = Plan(server="scaled", members=members, senders=min(members, args.senders), inflight=args.inflight,
                measure_s=args.duration, pin=False, extra_args=extra, label=label)
    outcome = repeat(plan, args.runs, verbose=args.runs > 1)
    print("median  " + outcome.line(), flush=True)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--inflight", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop what we started on the way out
    print(machine())
    print(f"one room, saturation ({args.senders} senders, {args.inflight:,} deliveries in flight), "
          f"median of {args.runs}, {args.duration:g} s each")
    with Redis() as redis:
        for members in args.members:
            memory = case(f"{members} members, 1 process, memory", ("--store=memory",), members, args)
            one = case(f"{members} members, 1 process, redis", (f"--redis-url={redis.url}", "--processes=1"),
                       members, args)
            two = case(f"{members} members, 2 processes, redis", (f"--redis-url={redis.url}", "--processes=2"),
                       members, args)
            if one.result and two.result and memory.result:
                print(f"{members:>5} members: 2 processes / 1 process (redis) = "
                      f"{two.result.rate / one.result.rate:.2f}x; redis / memory (1 process) = "
                      f"{one.result.rate / memory.result.rate:.2f}x", flush=True)


if __name__ == "__main__":
    main()
