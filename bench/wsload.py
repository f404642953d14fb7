"""A load generator for chat servers: raw sockets, one epoll loop, one core.

It has to receive several hundred thousand deliveries a second in CPython and
still leave headroom (its own CPU is reported), so it does as little per
delivery as it can:

- No WebSocket library.  The upgrade request is written by hand and receivers
  do not walk frames: a receiver counts occurrences of ``"type":"message"`` in
  what it reads (``bytes.count`` runs in C) and keeps the last few bytes so a
  pattern split between two reads is counted once.
- Senders put a marker ``~S.Q.T~`` in each message's text: S the sender's
  index, Q its sequence number (1, 2, ...), T the send time in microseconds.
  A few *probe* receivers per room find the markers with a compiled regex; that
  gives send-to-receive latency, gaps (a Q skipped or repeated) and the
  acknowledgement that drives the closed-loop ("saturation") mode.
- Client frames use the all-zero mask key (allowed by RFC 6455; masking is then
  the identity), so sending is one ``socket.send``.

Long-poll clients keep one HTTP/1.1 connection each and re-poll as soon as an
answer is complete.  Event-stream clients (``sse``) send one ``GET .../events``
with ``Accept: text/event-stream`` and then read it like a WebSocket: the same
count of ``"type":"message"`` and the same markers, whatever the framing around
them.  Every count is exact, so a run can say "nothing lost".
"""

from __future__ import annotations

import errno
import re
import resource
import select
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MSG = b'"type":"message"'
ERR = b'"type":"error"'
CARRY = len(MSG) - 1
MARK = re.compile(rb"~(\d+)\.(\d+)\.(\d+)~")
MARK_MAX_BYTES = 48  # a marker split between reads is never longer than this
CLEN = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
CURSOR = re.compile(rb'"cursor":(\d+)')
RECV_BYTES = 1 << 18
EPOLLIN, EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the server's answer is not checked


def client_frame(payload: bytes) -> bytes:
    """A masked text frame with mask key 0 (so the payload goes as it is)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, 0x80 | n)) + b"\0\0\0\0" + payload
    if n < 1 << 16:
        return bytes((0x81, 0xFE)) + n.to_bytes(2, "big") + b"\0\0\0\0" + payload
    return bytes((0x81, 0xFF)) + n.to_bytes(8, "big") + b"\0\0\0\0" + payload


def upgrade_request(host: str, port: int, path: str, headers: Iterable[str] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {WS_KEY}", "Sec-WebSocket-Version: 13", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def stream_request(host: str, port: int, path: str, headers: Iterable[str] = ()) -> bytes:
    """``GET .../events`` as an EventSource sends it."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


STREAMING = ("ws", "sse")  # kinds that get one answer and then read it for the rest of the run


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


class Conn:
    """One client connection (WebSocket or long-poll), in one room."""

    __slots__ = (
        "answers",
        "buf",
        "carry",
        "clen",
        "closed",
        "count",
        "cursor",
        "errors",
        "fd",
        "gaps",
        "hlen",
        "kind",
        "last",
        "name",
        "on_open",
        "out",
        "path",
        "probe",
        "request",
        "room",
        "sock",
        "state",
        "status",
        "tail",
        "token",
        "wait_s",
    )

    def __init__(self, kind: str, room: int, name: str, probe: bool, path: str = "") -> None:
        self.kind = kind  # "ws", "sse" (an event stream) or "poll"
        self.room = room
        self.path = path
        self.name = name
        self.probe = probe
        self.sock: socket.socket | None = None
        self.fd = -1
        self.state = "new"  # new, connecting, handshake, open, closed, failed
        self.status = ""
        self.buf = bytearray()
        self.out = bytearray()
        self.carry = b""
        self.tail = b""
        self.count = 0  # message events received
        self.errors = 0  # error frames / non-200 answers
        self.gaps = 0  # probes: sequence numbers skipped or repeated
        self.last: list[int] = []  # probes: last sequence number seen per sender
        self.closed = False
        self.request = b""
        self.on_open: bytes | None = None
        self.token: str | None = None
        self.cursor: int | None = None
        self.wait_s = 30.0
        self.clen: int | None = None
        self.hlen = 0
        self.answers = 0

    def headers(self) -> list[str]:
        return [f"Authorization: Bearer {self.token}"] if self.token else []


@dataclass
class Sender:
    conn: Conn
    index: int
    seq: int = 0
    probes: list[Conn] = field(default_factory=list)

    def acked(self) -> int:
        """Highest sequence number every probe of this sender's room has received."""
        return min((p.last[self.index] for p in self.probes), default=self.seq)


@dataclass
class DriveResult:
    seconds: float
    delivered: int  # message events received in the window (all receivers)
    sent: int  # messages sent in the window
    latencies_us: list[int]
    gen_cpu: float  # the load generator's CPU share in the window (1.0 = one core)
    lost: int  # deliveries expected after the drain but not received (< 0: extra)
    gaps: int
    errors: int
    closed: int
    server_cpu: float | None = None
    poll_delivered: int = 0
    stream_delivered: int = 0  # of ``delivered``: those received by event streams

    @property
    def stream_rate(self) -> float:
        return self.stream_delivered / self.seconds

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds

    @property
    def poll_rate(self) -> float:
        return self.poll_delivered / self.seconds

    def pct_ms(self, q: float) -> float:
        return percentile(self.latencies_us, q) / 1000.0


class Loader:
    """Connections, senders and the epoll loop that serves them all."""

    def __init__(self, host: str, port: int, message: Callable[[str], bytes]) -> None:
        self.host, self.port = host, port
        self.message = message  # text -> the client frame's payload for this server
        self.ep = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.all: list[Conn] = []
        self.senders: list[Sender] = []
        self.t0 = time.perf_counter_ns()
        self.latencies: list[int] = []
        self.measuring = False
        self.last_rx = time.monotonic()
        self.failed: list[str] = []
        self.rbuf = bytearray(RECV_BYTES)

    def now_us(self) -> int:
        return (time.perf_counter_ns() - self.t0) // 1000

    # -- connecting ----------------------------------------------------------------

    def _start(self, c: Conn) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        err = sock.connect_ex((self.host, self.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            c.state, c.status = "failed", errno.errorcode.get(err, str(err))
            self.failed.append(c.status)
            return
        c.sock, c.fd, c.state = sock, sock.fileno(), "connecting"
        self.conns[c.fd] = c
        self.ep.register(c.fd, EPOLLOUT)

    def open(self, conns: list[Conn], concurrency: int = 64, deadline_s: float = 120.0) -> None:
        """Connect and hand-shake ``conns`` (at most ``concurrency`` at a time), reading as we go."""
        pending = list(reversed(conns))
        deadline = time.monotonic() + deadline_s
        in_flight: set[Conn] = set()
        while pending or in_flight:
            while pending and len(in_flight) < concurrency:
                c = pending.pop()
                self.all.append(c)
                if c.kind == "ws":
                    c.request = upgrade_request(self.host, self.port, c.path, c.headers())
                elif c.kind == "sse":
                    c.request = stream_request(self.host, self.port, c.path, c.headers())
                else:
                    c.request = self.poll_request(c)
                self._start(c)
                in_flight.add(c)
            self.pump(0.02)
            in_flight = {c for c in in_flight if c.state in ("connecting", "handshake")}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending) + len(in_flight)} connections still not open")
        bad = [c for c in conns if c.state != "open"]
        if bad:
            raise ConnectionError(f"{len(bad)} of {len(conns)} connections failed, e.g. {bad[0].status!r}")

    def quiesce(self, idle_s: float = 0.3, limit_s: float = 60.0) -> None:
        """Read until nothing has arrived for ``idle_s`` (joins, presence, replays have drained)."""
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            self.pump(0.05)
            if time.monotonic() - self.last_rx > idle_s:
                return

    # -- the loop ------------------------------------------------------------------

    def pump(self, timeout_s: float) -> None:
        events = self.ep.poll(timeout_s, 1024)
        if not events:
            return
        t_us = (time.perf_counter_ns() - self.t0) // 1000
        conns = self.conns
        buf = self.rbuf  # one buffer for every read: no allocation per recv
        for fd, ev in events:
            c = conns.get(fd)
            if c is None:
                continue
            if ev & EPOLLOUT:
                self._writable(c)
                if c.closed:
                    continue
            if not ev & ~EPOLLOUT:
                continue
            assert c.sock is not None  # in conns: connected
            try:
                n = c.sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                n = 0
            if not n:
                self._close(c)
                continue
            if c.state == "open" and c.kind in STREAMING and not c.probe:
                if c.carry:
                    c.count += (c.carry + buf[:CARRY]).count(MSG)
                c.count += buf.count(MSG, 0, n)
                c.carry = bytes(buf[n - CARRY:n]) if n >= CARRY else (c.carry + buf[:n])[-CARRY:]
                if buf.find(ERR, 0, n) >= 0:
                    c.errors += buf.count(ERR, 0, n)
                continue
            data = bytes(buf[:n])
            if c.state == "open" and c.kind in STREAMING:
                if c.carry:
                    c.count += (c.carry + data[:CARRY]).count(MSG)
                c.count += data.count(MSG)
                c.carry = (c.carry + data)[-CARRY:] if n < CARRY else data[-CARRY:]
                self._probe(c, data, t_us)
            elif c.kind == "poll" and c.state == "open":
                self._poll_data(c, data, t_us)
            else:
                self._handshake_data(c, data, t_us)
        self.last_rx = time.monotonic()

    def _writable(self, c: Conn) -> None:
        assert c.sock is not None  # in conns: connected
        if c.state == "connecting":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                c.status = errno.errorcode.get(err, str(err))
                self._close(c, failed=True)
                return
            c.state = "handshake" if c.kind in STREAMING else "open"
            c.out += c.request
        if c.out:
            try:
                n = c.sock.send(c.out)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._close(c)
                return
            del c.out[:n]
        self.ep.modify(c.fd, EPOLLIN | EPOLLOUT if c.out else EPOLLIN)

    def write(self, c: Conn, data: bytes) -> None:
        if c.closed:
            return
        if not c.out:
            assert c.sock is not None  # open() refuses to go on with a connection that failed
            try:
                n = c.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._close(c)
                return
            if n == len(data):
                return
            data = data[n:]
            c.out += data
            self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)
        else:
            c.out += data

    def _close(self, c: Conn, failed: bool = False) -> None:
        if c.closed:
            return
        c.closed = True
        if failed or c.state != "open":
            c.state = "failed"
            self.failed.append(c.status or "closed during the handshake")
        else:
            c.state = "closed"
        self.conns.pop(c.fd, None)
        try:
            self.ep.unregister(c.fd)
        except (OSError, ValueError):
            pass
        assert c.sock is not None  # in conns: connected
        c.sock.close()

    def close_all(self) -> None:
        for c in self.all:
            if c.sock is not None and not c.closed:
                c.closed = True
                self.conns.pop(c.fd, None)
                c.sock.close()
        self.ep.close()

    # -- WebSocket -----------------------------------------------------------------

    def _handshake_data(self, c: Conn, data: bytes, t_us: int) -> None:
        c.buf += data
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(c.buf[:end])
        rest = bytes(c.buf[end + 4:])
        c.buf = bytearray()
        c.status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if (b" 101 " if c.kind == "ws" else b" 200 ") not in head.split(b"\r\n", 1)[0]:
            self._close(c, failed=True)
            return
        c.state = "open"
        if c.on_open:
            self.write(c, client_frame(c.on_open))
        if rest:
            c.count += rest.count(MSG)
            c.carry = rest[-CARRY:]
            if c.probe:
                self._probe(c, rest, t_us)

    def _probe(self, c: Conn, data: bytes, t_us: int) -> None:
        buf = c.tail + data if c.tail else data
        end = 0
        last = c.last
        lat = self.latencies if self.measuring else None
        for m in MARK.finditer(buf):
            s, q = int(m[1]), int(m[2])
            if q != last[s] + 1:
                c.gaps += 1
            last[s] = q
            if lat is not None:
                lat.append(t_us - int(m[3]))
            end = m.end()
        c.tail = buf[max(end, len(buf) - MARK_MAX_BYTES):]
        if ERR in data:
            c.errors += data.count(ERR)

    # -- long-poll -----------------------------------------------------------------

    def poll_request(self, c: Conn) -> bytes:
        query = f"?after={c.cursor}&wait={c.wait_s:g}" if c.cursor is not None else ""
        return (f"GET {c.path}{query} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {c.token}\r\n\r\n").encode()

    def _poll_data(self, c: Conn, data: bytes, t_us: int) -> None:
        c.buf += data
        while True:
            if c.clen is None:
                end = c.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(c.buf[:end + 2])
                c.status = head[9:12].decode()
                m = CLEN.search(head)
                c.clen = int(m[1]) if m else 0
                c.hlen = end + 4
            if len(c.buf) < c.hlen + c.clen:
                return
            body = bytes(c.buf[c.hlen:c.hlen + c.clen])
            del c.buf[:c.hlen + c.clen]
            c.clen = None
            c.answers += 1
            if c.status != "200":
                c.errors += 1
            else:
                c.count += body.count(MSG)
                m = CURSOR.search(body)
                if m:
                    c.cursor = int(m[1])
                if c.probe:
                    self._probe(c, body, t_us)
            if c.state == "open":  # re-poll at once
                self.write(c, self.poll_request(c))

    # -- sending -------------------------------------------------------------------

    def add_senders(self, conns: list[Conn], probes_by_room: dict[int, list[Conn]]) -> None:
        for c in conns:
            self.senders.append(Sender(c, len(self.senders), probes=probes_by_room.get(c.room, [])))
        for c in self.all:
            if c.probe:
                c.last = [0] * len(self.senders)

    def send(self, s: Sender) -> None:
        s.seq += 1
        text = f"~{s.index}.{s.seq}.{self.now_us()}~"
        self.write(s.conn, client_frame(self.message(text)))

    def drive(self, measure_s: float, warmup_s: float = 1.0, rate_eps: float | None = None,
              window: int | None = None, drain_s: float = 10.0,
              server_cpu: Callable[[], float] | None = None) -> DriveResult:
        """Send for ``warmup_s + measure_s``, measuring the second part, then drain.

        ``rate_eps``: events per second in total over all senders (open loop), or
        ``window``: at most that many unacknowledged events per sender (closed loop, saturation).
        """
        senders = self.senders
        for c in self.all:
            c.count = 0
        start_seq = {s.index: s.seq for s in senders}
        t_start = time.monotonic()
        t_measure = t_start + warmup_s
        t_end = t_measure + measure_s
        sent_total = 0
        snap: dict[str, float] = {}
        rr = 0
        while True:
            now = time.monotonic()
            if not self.measuring and now >= t_measure and "t" not in snap:
                self.measuring = True
                self.latencies = []
                snap.update(t=now, delivered=self._delivered(*STREAMING), streamed=self._delivered("sse"),
                            polled=self._delivered("poll"),
                            sent=sent_total, cpu=cpu_seconds(), scpu=server_cpu() if server_cpu else 0.0)
            if now >= t_end:
                break
            if rate_eps is not None:
                due = int((now - t_start) * rate_eps) - sent_total
                for _ in range(min(due, 10_000)):
                    self.send(senders[rr % len(senders)])
                    rr += 1
                    sent_total += 1
                self.pump(0.0005 if due > 0 else 0.001)
            else:
                assert window is not None, "drive() needs rate_eps or window"
                for s in senders:
                    acked = s.acked()
                    while s.seq - acked < window and not s.conn.closed:
                        self.send(s)
                        sent_total += 1
                self.pump(0.005)
        self.measuring = False
        t_stop = time.monotonic()
        res = DriveResult(
            seconds=t_stop - snap["t"], delivered=self._delivered(*STREAMING) - int(snap["delivered"]),
            stream_delivered=self._delivered("sse") - int(snap["streamed"]),
            sent=sent_total - int(snap["sent"]), latencies_us=sorted(self.latencies),
            gen_cpu=(cpu_seconds() - snap["cpu"]) / (t_stop - snap["t"]),
            server_cpu=((server_cpu() - snap["scpu"]) / (t_stop - snap["t"])) if server_cpu else None,
            poll_delivered=self._delivered("poll") - int(snap["polled"]),
            lost=0, gaps=0, errors=0, closed=0)
        self._drain(drain_s)
        sent_by_room: dict[int, int] = {}
        for s in senders:
            sent_by_room[s.conn.room] = sent_by_room.get(s.conn.room, 0) + s.seq - start_seq[s.index]
        res.lost = sum(sent_by_room.get(c.room, 0) - c.count for c in self.all)
        res.gaps = sum(c.gaps for c in self.all)
        res.errors = sum(c.errors for c in self.all)
        res.closed = sum(1 for c in self.all if c.closed)
        return res

    def _delivered(self, *kinds: str) -> int:
        return sum(c.count for c in self.all if c.kind in kinds)

    def _drain(self, limit_s: float) -> None:
        """Read until every probe has every sender's last message (bounded)."""
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            if all(s.acked() >= s.seq for s in self.senders):
                break
            self.pump(0.01)
        self.quiesce(0.2, max(0.0, end - time.monotonic()))
