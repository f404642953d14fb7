"""The SQLite store's writer thread: one connection that writes, group commit, exactly once.

``SQLiteStore.append`` queues the draft and awaits a future; the writer takes everything queued at
that moment (group commit: what arrived while the previous transaction was being synced shares the
next one and its fsync; a busy writer lingers a moment for company, see COMMIT_LINGER_S), gives the
drafts ids in queue order, commits, and only then resolves the futures, in id order, with one call
into each event loop.  A failed batch is rolled back: it consumes no id and every sender in it gets
a :class:`~rooms.errors.StoreError`.  docs/storage.md describes it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rooms.errors import StoreError
from rooms.models import Draft, Event, Retention, new_epoch, utc_timestamp

from .schema import INSERT_EVENTS, find_sent, migrate, track_presence, trim_room

log = logging.getLogger("obrolan.sqlite")

BUSY_TIMEOUT_MS = 2000  # how long a write waits for a lock another process holds
# How long a ping's write probe waits for that lock: under the hub's READY_CHECK_TIMEOUT_S (2 s), so
# that /readyz says the database is locked rather than only that the store was slow.
READY_PROBE_BUSY_MS = 1000
BATCH_MAX_APPENDS = 1000  # appends in one transaction at most; the rest go in the next
# Under a steady trickle (messages a millisecond apart, none queued at once) every append would pay
# its own fsync (~0.4 ms, ~130 us of CPU on the benchmark VM).  So when the writer committed less
# than LINGER_WHEN_BUSY_S ago and has fewer than LINGER_BATCH_MAX appends, it sleeps
# COMMIT_LINGER_S for company.  An idle store commits at once; a busy one already has company.
COMMIT_LINGER_S = 0.0015
LINGER_WHEN_BUSY_S = 0.005
LINGER_BATCH_MAX = 8
RETENTION_SWEEP_INTERVAL_S = 60.0  # age-based trimming runs at start and this often


def failure(exc: sqlite3.Error) -> str:
    """What a sender is told when its write failed, by SQLite's primary result code."""
    return f"could not save to the history database: {_reason(exc)}; nothing was stored, try again"


def _reason(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL"):
        reason = "the disk or the database is full"
    elif name.startswith("SQLITE_READONLY"):
        reason = "the database file is read-only"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        reason = "the database is locked by another process"
    elif name.startswith("SQLITE_IOERR"):
        reason = f"the disk refused the write (full, over quota or failing: {exc})"
    else:
        reason = str(exc)
    return reason


@dataclass(slots=True)
class _Append:
    draft: Draft
    future: asyncio.Future[tuple[Event, bool]]


@dataclass(slots=True)
class _Call:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _RoomWrite:
    room_id: int
    last_id: int
    last_ts: str | None = None  # set when this batch added an event


_STOP = object()


class _Retried(Exception):
    """A batch holds a send already stored: write it again, looking each key up."""


_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # SQLite rolls back by itself on some errors (disk full, I/O)
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("rollback failed: %s", exc)


def write_probe(conn: sqlite3.Connection) -> None:
    """On the writer's connection: take the write lock as an append does, read the schema, write
    nothing.  Another process holding the lock (a backup, a ``sqlite3`` shell in a transaction)
    makes it fail after READY_PROBE_BUSY_MS, as it makes every append fail after BUSY_TIMEOUT_MS."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {READY_PROBE_BUSY_MS}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.Error as exc:
        raise StoreError(f"the history database cannot be written: {_reason(exc)}") from exc


def _resolve(outcomes: list[_Outcome]) -> None:
    """On the futures' loop: settle them in order (so senders resume, and publish, in id order)."""
    for future, result, exc in outcomes:
        if future.done():  # its awaiter was cancelled; what was committed stays committed
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)


class Writer:
    """The thread that owns the only writing connection; everything reaches it through ``queue``."""

    def __init__(self, path: Path, retention: Retention, new_epochs: dict[str, str],
                 commit_window_s: float = 0.0) -> None:
        self.path = path
        self.retention = retention
        self.new_epochs = new_epochs  # epochs given out for rooms not in the file yet (the store's)
        # Extra time the writer lingers for more appends before a commit; 0 = take what is queued.
        self.commit_window_s = commit_window_s
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.commits = 0  # committed batches and appends, for the benchmark
        self.committed_appends = 0
        self.committed_at = -LINGER_WHEN_BUSY_S  # monotonic seconds: the last commit's end

    def append(self, draft: Draft, future: asyncio.Future[tuple[Event, bool]]) -> None:
        self.queue.put(_Append(draft, future))

    def call(self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any]) -> None:
        self.queue.put(_Call(fn, future))

    def stop(self) -> None:
        """The writer commits what is queued before this, then ends."""
        self.queue.put(_STOP)

    def run(self, ready: asyncio.Future[None]) -> None:
        """The thread's body: open the connection, say so through ``ready``, serve until stopped."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")  # persistent; readers and writer stop blocking each other
            conn.execute("PRAGMA synchronous = FULL")  # a commit is on disk (fsync) before anyone is told
            migrate(conn, self.path)
        except (sqlite3.Error, OSError, StoreError) as exc:
            error = exc if isinstance(exc, StoreError) else StoreError(
                f"cannot open the history database {self.path}: {exc}")
            settle([(ready, None, error)])
            return
        settle([(ready, None, None)])
        try:
            self._serve(conn)
        finally:
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        sweep_at = time.monotonic() + RETENTION_SWEEP_INTERVAL_S
        while True:
            timeout = max(0.0, sweep_at - time.monotonic()) if self.retention.max_age_s else None
            try:
                item: object | None = self.queue.get(timeout=timeout)
            except queue.Empty:
                sweep_at = time.monotonic() + RETENTION_SWEEP_INTERVAL_S
                try:
                    self.trim_all(conn)
                except sqlite3.Error as exc:
                    log.warning("retention sweep of %s failed: %s", self.path, exc)
                continue
            while item is not None:
                if item is _STOP:
                    return
                if isinstance(item, _Call):
                    self._call(conn, item)
                    item = None
                else:
                    assert isinstance(item, _Append)
                    batch, item = self._gather(item)
                    self._commit(conn, batch)

    def _gather(self, first: _Append) -> tuple[list[_Append], object | None]:
        """The group: everything queued now (or within the window, or the linger of a busy store:
        see COMMIT_LINGER_S); returns what ended it."""
        batch = [first]
        deadline = time.monotonic() + self.commit_window_s
        may_linger = time.monotonic() - self.committed_at < LINGER_WHEN_BUSY_S
        while len(batch) < BATCH_MAX_APPENDS:
            wait = deadline - time.monotonic()
            try:
                item = self.queue.get(timeout=wait) if wait > 0 else self.queue.get_nowait()
            except queue.Empty:
                if not (may_linger and len(batch) < LINGER_BATCH_MAX):
                    break
                may_linger = False  # once: wait a little for company, then commit what came
                # Asleep through the whole linger rather than woken by each append that comes
                # meanwhile: one wake of this thread per commit, not one per append (each wake
                # takes the GIL from the event loop's thread: two thread switches).
                time.sleep(COMMIT_LINGER_S)
                continue
            if not isinstance(item, _Append):
                return batch, item
            batch.append(item)
        return batch, None

    def _call(self, conn: sqlite3.Connection, call: _Call) -> None:
        try:
            settle([(call.future, call.fn(conn), None)])
        except sqlite3.Error as exc:
            settle([(call.future, None, StoreError(failure(exc)))])
        except Exception as exc:  # a fault of ours: the caller gets it, the writer goes on
            settle([(call.future, None, exc)])

    def _commit(self, conn: sqlite3.Connection, batch: list[_Append]) -> None:
        try:
            try:
                outcomes = self._transaction(conn, batch, check_each=False)
            except _Retried:
                outcomes = self._transaction(conn, batch, check_each=True)
        except sqlite3.Error as exc:
            detail = failure(exc)
            log.error("history write of %d events failed: %s", len(batch), exc)
            settle([(item.future, None, StoreError(detail)) for item in batch])
            return
        except Exception:  # a fault of ours: the senders get an error, the writer goes on
            log.exception("history write of %d events failed", len(batch))
            detail = "could not save to the history database (internal error); nothing was stored"
            settle([(item.future, None, StoreError(detail)) for item in batch])
            return
        self.commits += 1
        self.committed_at = time.monotonic()
        self.committed_appends += len(batch)
        settle(outcomes)

    def _transaction(self, conn: sqlite3.Connection, batch: list[_Append], check_each: bool) -> list[_Outcome]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes = self._write(conn, batch, check_each)
            conn.execute("COMMIT")
            return outcomes
        except BaseException:
            rollback(conn)
            raise

    def _write(self, conn: sqlite3.Connection, batch: list[_Append], check_each: bool) -> list[_Outcome]:
        """Inside the transaction: dedupe, give ids, insert, trim; what each sender will get.

        Retries are rare, so the first try looks nothing up per send: one INSERT for the whole
        batch, and the unique index on the exactly-once key reports a retry by inserting fewer
        rows.  Then the batch is rolled back and written again with ``check_each``.  (Every SQLite
        call lets the GIL go and may wait to get it back: few calls per batch keep the writer fast.)
        """
        rooms: dict[str, _RoomWrite] = {}
        sent: dict[tuple[int, str, str], Event] = {}  # first events of this batch, by exactly-once key
        rows: list[tuple[Any, ...]] = []
        presence: list[tuple[int, str, str, str]] = []  # joins and leaves, in id order
        outcomes: list[_Outcome] = []
        for item in batch:
            draft = item.draft
            room = rooms.get(draft.room)
            if room is None:
                room = rooms[draft.room] = self._room_for_write(conn, draft.room)
            key = (room.room_id, draft.session, draft.client_id) if draft.session and draft.client_id else None
            if key is not None:
                first = sent.get(key) or (find_sent(conn, draft.room, key) if check_each else None)
                if first is not None:
                    outcomes.append((item.future, (first, False), None))
                    continue
            room.last_id += 1
            event = draft.with_id(room.last_id)
            rows.append((room.room_id, event.id, draft.type, draft.user, draft.ts, draft.text,
                         draft.session, draft.client_id))
            room.last_ts = draft.ts
            if key is not None:
                sent[key] = event
            if draft.type != "message" and draft.session:
                presence.append((room.room_id, draft.type, draft.session, draft.user))
            outcomes.append((item.future, (event, True), None))
        if check_each:
            conn.executemany(INSERT_EVENTS, rows)  # a conflict now is a real fault: IntegrityError
        elif conn.executemany(INSERT_EVENTS + " ON CONFLICT DO NOTHING", rows).rowcount != len(rows):
            raise _Retried
        for change in presence:
            track_presence(conn, *change)
        for room in rooms.values():
            if room.last_ts is not None:
                conn.execute("UPDATE rooms SET last_id = ?, last_ts = ? WHERE id = ?",
                             (room.last_id, room.last_ts, room.room_id))
                if self.retention.max_events:
                    trim_room(conn, room.room_id, room.last_id, self.retention.max_events, None)
        return outcomes

    def _room_for_write(self, conn: sqlite3.Connection, name: str) -> _RoomWrite:
        row = conn.execute("SELECT id, last_id FROM rooms WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return _RoomWrite(row[0], row[1])
        epoch = self.new_epochs.get(name) or new_epoch()
        cursor = conn.execute("INSERT INTO rooms (name, epoch) VALUES (?, ?)", (name, epoch))
        return _RoomWrite(int(cursor.lastrowid or 0), 0)

    def trim_all(self, conn: sqlite3.Connection) -> int:
        """Apply the retention to every room in one transaction; events removed."""
        max_age_s = self.retention.max_age_s
        cutoff = utc_timestamp(time.time() - max_age_s) if max_age_s else None
        removed = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for room_id, last_id in conn.execute("SELECT id, last_id FROM rooms").fetchall():
                removed += trim_room(conn, room_id, last_id, self.retention.max_events, cutoff)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
        return removed


def settle(outcomes: list[_Outcome]) -> None:
    """From the writer thread: hand results to each future's loop, one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, items)
        except RuntimeError:  # that loop is closed: nobody is waiting any more
            pass
