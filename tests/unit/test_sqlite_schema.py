"""The SQLite history file: a versioned schema migrated once, and files it must not use refused.

No server: the store itself, on a file in the test's directory.
"""

from __future__ import annotations

import sqlite3

import pytest

from backends.sqlite.schema import APPLICATION_ID, MIGRATIONS
from backends.sqlite.store import SQLiteStore
from rooms import errors
from rooms.models import Draft


@pytest.mark.gen_test
async def test_schema_is_versioned_and_migrated_once(tmp_path):
    store = SQLiteStore(None, str(tmp_path))
    await store.start()
    await store.open_room("a", 10)
    await store.append(Draft("message", "a", "Ani", "x", "s", "c"))
    await store.close()
    conn = sqlite3.connect(tmp_path / "obrolan.sqlite3")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    store = SQLiteStore(None, str(tmp_path))
    await store.start()  # already current: nothing runs again, nothing is lost
    assert (await store.open_room("a", 10)).last_id == 1
    await store.close()


@pytest.mark.gen_test
async def test_a_newer_or_foreign_database_is_refused(tmp_path):
    newer = tmp_path / "newer.sqlite3"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(errors.StoreError, match="schema version"):
        await SQLiteStore(str(newer), str(tmp_path)).start()
    foreign = tmp_path / "foreign.sqlite3"
    conn = sqlite3.connect(foreign)
    conn.execute("PRAGMA application_id = 42")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(errors.StoreError, match="not an Obrolan history database"):
        await SQLiteStore(str(foreign), str(tmp_path)).start()
