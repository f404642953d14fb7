"""The SQLite history store: durable, exactly-once appends with group commit, off the IOLoop.

One writer thread owns the only connection that writes (:mod:`backends.sqlite.writer`):
``append`` queues the draft and awaits a future that the writer resolves after the commit.

Reads run on a small pool of reader threads, each with its own query-only connection;
in WAL mode they never wait for the writer, nor it for them.

The schema, its migrations and the queries are in :mod:`backends.sqlite.schema`;
docs/storage.md describes all of it.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO, TypeVar

from rooms.errors import StoreError
from rooms.models import Draft, Event, Retention, RoomInfo, RoomState, Session, new_epoch
from rooms.ports import Store

from .schema import (
    create_room,
    list_rooms,
    present,
    read_after,
    read_before,
    read_room,
)
from .writer import BUSY_TIMEOUT_MS, Writer, rollback, write_probe

log = logging.getLogger("obrolan.sqlite")

T = TypeVar("T")

DB_FILE_NAME = "obrolan.sqlite3"
LOCK_SUFFIX = ".lock"  # obrolan.sqlite3.lock beside the file: held while a server uses it
READER_THREADS = 2


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _select_one(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()


def _no_read(conn: sqlite3.Connection) -> None:
    """A read that only makes sure its thread has its connection."""


class SQLiteStore(Store):
    durable = True
    keeps_presence = True

    def __init__(self, path: str | None, data_dir: str, retention: Retention | None = None,
                 commit_window_s: float = 0.0) -> None:
        self.path = Path(path) if path else Path(data_dir) / DB_FILE_NAME
        self.retention = retention or Retention()
        self.commit_window_s = commit_window_s  # see Writer
        self.writer: Writer | None = None
        self._thread: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        # Epochs given to the hub for rooms not in the file yet; the first append stores them.
        self._new_epochs: dict[str, str] = {}
        self._closed = False
        self._lock: TextIO | None = None
        self._probe: asyncio.Future[None] | None = None  # the write probe in flight, shared by pings

    @property
    def commits(self) -> int:
        """Committed batches so far, for the benchmark (0 before start)."""
        return self.writer.commits if self.writer else 0

    @property
    def committed_appends(self) -> int:
        return self.writer.committed_appends if self.writer else 0

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._lock_file()
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self.writer = Writer(self.path, self.retention, self._new_epochs, self.commit_window_s)
        self._thread = threading.Thread(target=self.writer.run, args=(ready,),
                                        name="obrolan-sqlite-writer", daemon=True)
        self._thread.start()
        try:
            await ready
        except BaseException:
            self._unlock()  # it never opened: the file is free for whoever fixes it
            raise
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="obrolan-sqlite-read")
        # Open the reader connections now, so the first reads do not pay for it.
        await asyncio.gather(*(self._read(_no_read) for _ in range(READER_THREADS)))
        if self.retention.max_events or self.retention.max_age_s:
            removed = await self.trim()
            if removed:
                log.info("retention removed %d old events from %s", removed, self.path)

    def _lock_file(self) -> None:
        """One server per database file, for the life of the process (the OS releases the lock
        if it dies): a second server would hand out the same ids, and neither would see the
        other's events."""
        lock_path = self.path.with_name(self.path.name + LOCK_SUFFIX)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(lock_path, "a+")
        except OSError as exc:
            raise StoreError(f"cannot open the history database {self.path}: {exc}") from exc
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise StoreError(f"{self.path} is in use by another Obrolan server (pid {holder}); "
                             "one server per database file") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    async def close(self) -> None:
        """Commit what is queued, then release the connections."""
        self._closed = True
        if self._thread is not None and self.writer is not None:
            self.writer.stop()
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
            self._thread = None
        if self._readers is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._readers.shutdown)
            self._readers = None
        with self._conns_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self._unlock()

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    # -- the Store interface --------------------------------------------------------

    async def open_room(self, room: str, recent_max: int, create: bool = True) -> RoomState:
        found = await self._read(read_room, room, recent_max)
        if found is not None:
            epoch, last_id, recent = found
            return RoomState(epoch, last_id, recent)
        if not create:
            return RoomState(new_epoch(), 0, [], exists=False)
        epoch = await self._on_writer(functools.partial(create_room, room=room,
                                                    epoch=self._new_epochs.setdefault(room, new_epoch())))
        return RoomState(epoch, 0, [])

    async def append(self, draft: Draft) -> tuple[Event, bool]:
        if self._closed or self.writer is None:
            raise StoreError("the history store is not running")
        future: asyncio.Future[tuple[Event, bool]] = asyncio.get_running_loop().create_future()
        self.writer.append(draft, future)
        return await future

    async def read_after(self, room: str, after_id: int, limit: int) -> list[Event] | None:
        return await self._read(read_after, room, after_id, limit)

    async def read_before(self, room: str, before_id: int, limit: int) -> list[Event]:
        return await self._read(read_before, room, before_id, limit)

    def forget_room(self, room: str) -> None:
        self._new_epochs.pop(room, None)

    async def ping(self) -> None:
        """A reader answers a query and the writer can take the write lock (nothing is written).
        Pings share the probe in flight: a locked file does not pile probes up on the writer."""
        if self._closed or self._thread is None or not self._thread.is_alive():
            raise StoreError("the history store is not running")
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._on_writer(write_probe))
            self._probe.add_done_callback(_retrieved)  # its error is its awaiters'; none may be left
        await asyncio.gather(self._read(_select_one), asyncio.shield(self._probe))

    async def list_rooms(self) -> list[RoomInfo]:
        return await self._read(list_rooms)

    async def present(self) -> dict[str, list[Session]]:
        return await self._read(present)

    async def trim(self) -> int:
        assert self.writer is not None, "trim() after start()"
        return await self._on_writer(self.writer.trim_all)

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the writer's connection, between two group commits."""
        if self._closed or self.writer is None:
            raise StoreError("the history store is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.writer.call(fn, future)
        return await future

    # -- reader threads ------------------------------------------------------------------

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        if self._readers is None:
            raise StoreError("the history store is not running")
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._in_reader, fn, args)

    def _in_reader(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA query_only = 1")
                self._local.conn = conn
                with self._conns_lock:
                    self._reader_conns.append(conn)
            return fn(conn, *args)
        except sqlite3.Error as exc:
            if conn is not None:
                rollback(conn)
            raise StoreError(f"could not read the history database: {exc}") from exc
