"""The SQLite history file: its schema, the migrations that build it, and the queries.

The schema is a list of migration steps; ``PRAGMA user_version`` counts those that
have run.  :mod:`backends.sqlite.store` runs them at start and owns the threads and
connections; the functions here each take a connection.  docs/storage.md describes it.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from rooms.errors import StoreError
from rooms.models import Event, RoomInfo, Session
from rooms.ports import LIST_ROOMS_MAX

log = logging.getLogger("obrolan.sqlite")

APPLICATION_ID = 0x4F42524C  # "OBRL" in the file header: this file is an Obrolan history

# Migration N is MIGRATIONS[N - 1]; each runs in one transaction with ``user_version = N``.
# Append new steps, never edit one that has shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: rooms with their epoch and newest id; events keyed by (room, id); exactly-once keys
        f"PRAGMA application_id = {APPLICATION_ID}",
        """CREATE TABLE rooms (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            epoch TEXT NOT NULL,
            last_id INTEGER NOT NULL DEFAULT 0,  -- newest id ever given; ids are never reused
            last_ts TEXT                         -- ts of that event: the room's last activity
        )""",
        "CREATE INDEX rooms_last_ts ON rooms (last_ts)",
        """CREATE TABLE events (
            room_id INTEGER NOT NULL REFERENCES rooms (id),
            id INTEGER NOT NULL,
            type TEXT NOT NULL,
            user TEXT NOT NULL,
            ts TEXT NOT NULL,
            text TEXT,
            session TEXT,
            client_id TEXT,
            PRIMARY KEY (room_id, id)
        ) WITHOUT ROWID""",
        """CREATE UNIQUE INDEX events_client_id ON events (room_id, session, client_id)
            WHERE client_id IS NOT NULL""",
    ),
    (  # 2: who is present: a stored join adds the session, a stored leave removes it (same transaction)
        """CREATE TABLE presence (
            room_id INTEGER NOT NULL REFERENCES rooms (id),
            session TEXT NOT NULL,
            user TEXT NOT NULL,
            PRIMARY KEY (room_id, session)
        ) WITHOUT ROWID""",
        # From the history so far: the sessions whose newest join/leave is a join.
        """INSERT INTO presence (room_id, session, user)
            SELECT room_id, session, user FROM (
                SELECT room_id, session, user, type,
                       ROW_NUMBER() OVER (PARTITION BY room_id, session ORDER BY id DESC) AS newest
                FROM events WHERE type IN ('join', 'leave') AND session IS NOT NULL)
            WHERE newest = 1 AND type = 'join'""",
    ),
)

EVENT_COLUMNS = "id, type, user, ts, text, session, client_id"


def event_from_row(room: str, row: tuple[Any, ...]) -> Event:
    return Event(row[0], row[1], room, row[2], row[3], row[4], row[5], row[6])


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Run the missing migration steps; return the schema version found."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id not in (0, APPLICATION_ID):
        raise StoreError(f"{path} is not an Obrolan history database")
    found: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > len(MIGRATIONS):
        raise StoreError(f"{path} has schema version {found}; this Obrolan knows up to "
                         f"{len(MIGRATIONS)}: run a newer Obrolan")
    for number in range(found + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("COMMIT")
                continue
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("history database %s: migrated to schema version %d", path, number)
    return found


INSERT_EVENTS = ("INSERT INTO events (room_id, id, type, user, ts, text, session, client_id) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def read_room(conn: sqlite3.Connection, room: str, recent_max: int) -> tuple[str, int, list[Event]] | None:
    """The room's epoch, newest id and newest events (oldest first); None if it has none stored."""
    conn.execute("BEGIN")  # one snapshot: last_id and the events agree
    try:
        row = conn.execute("SELECT id, epoch, last_id FROM rooms WHERE name = ?", (room,)).fetchone()
        if row is None:
            return None
        rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE room_id = ? "
                            "ORDER BY id DESC LIMIT ?", (row[0], recent_max)).fetchall()
    finally:
        conn.execute("COMMIT")
    return row[1], row[2], [event_from_row(room, r) for r in reversed(rows)]


def read_after(conn: sqlite3.Connection, room: str, after_id: int, limit: int) -> list[Event] | None:
    """Events after ``after_id``, starting exactly there; None when retention removed some."""
    conn.execute("BEGIN")
    try:
        row = conn.execute("SELECT id, last_id FROM rooms WHERE name = ?", (room,)).fetchone()
        if row is None or after_id >= row[1]:
            return []
        rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE room_id = ? AND id > ? "
                            "ORDER BY id LIMIT ?", (row[0], after_id, limit)).fetchall()
    finally:
        conn.execute("COMMIT")
    if not rows or rows[0][0] != after_id + 1:
        return None  # retention removed some of them
    return [event_from_row(room, r) for r in rows]


def read_before(conn: sqlite3.Connection, room: str, before_id: int, limit: int) -> list[Event]:
    """The newest ``limit`` events before ``before_id``, oldest first: one range of the primary key."""
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE room_id = (SELECT id FROM rooms WHERE name = ?) "
        "AND id < ? ORDER BY id DESC LIMIT ?", (room, before_id, limit)).fetchall()
    return [event_from_row(room, r) for r in reversed(rows)]


def list_rooms(conn: sqlite3.Connection) -> list[RoomInfo]:
    """Rooms with events, most recently active first."""
    rows = conn.execute("SELECT name, last_id, last_ts FROM rooms WHERE last_ts IS NOT NULL "
                        "ORDER BY last_ts DESC LIMIT ?", (LIST_ROOMS_MAX,)).fetchall()
    return [RoomInfo(name, last_id, last_ts) for name, last_id, last_ts in rows]


def create_room(conn: sqlite3.Connection, room: str, epoch: str) -> str:
    """Store the room (a join created it) unless it is there; its epoch."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO rooms (name, epoch) VALUES (?, ?)", (room, epoch))
        stored = str(conn.execute("SELECT epoch FROM rooms WHERE name = ?", (room,)).fetchone()[0])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return stored


def present(conn: sqlite3.Connection) -> dict[str, list[Session]]:
    """Per room, the sessions whose stored join has no stored leave after it."""
    out: dict[str, list[Session]] = {}
    for name, sid, user in conn.execute("SELECT rooms.name, presence.session, presence.user FROM presence "
                                        "JOIN rooms ON rooms.id = presence.room_id ORDER BY rooms.name"):
        out.setdefault(name, []).append(Session(sid, user))
    return out


def track_presence(conn: sqlite3.Connection, room_id: int, kind: str, session: str, user: str) -> None:
    """Inside the transaction that stores a join or leave: who is present follows it."""
    if kind == "join":
        conn.execute("INSERT OR REPLACE INTO presence (room_id, session, user) VALUES (?, ?, ?)",
                     (room_id, session, user))
    elif kind == "leave":
        conn.execute("DELETE FROM presence WHERE room_id = ? AND session = ?", (room_id, session))


def find_sent(conn: sqlite3.Connection, room: str, key: tuple[int, str, str]) -> Event | None:
    """The event first stored under the exactly-once key ``(room_id, session, client_id)``."""
    row = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events "
                       "WHERE room_id = ? AND session = ? AND client_id = ?", key).fetchone()
    return event_from_row(room, row) if row is not None else None


def trim_room(conn: sqlite3.Connection, room_id: int, last_id: int, max_events: int,
              cutoff: str | None) -> int:
    """Delete the oldest events beyond ``max_events`` (0: no limit) or older than ``cutoff``.

    Only ever a prefix of the ids, so what is kept stays contiguous; ``rooms.last_id`` is
    untouched, so no id is given twice.
    """
    keep_from = 1
    if max_events:
        keep_from = max(1, last_id - max_events + 1)
    if cutoff is not None:
        # Walks from the oldest kept event: it reads only rows it is about to delete, plus one.
        row = conn.execute("SELECT id FROM events WHERE room_id = ? AND id >= ? AND ts >= ? "
                           "ORDER BY id LIMIT 1", (room_id, keep_from, cutoff)).fetchone()
        keep_from = row[0] if row is not None else last_id + 1
    if keep_from <= 1:
        return 0
    return conn.execute("DELETE FROM events WHERE room_id = ? AND id < ?", (room_id, keep_from)).rowcount
