"""The SQLite writer's linger (backends/sqlite/writer.py, docs/storage.md): a lone append on an idle
store is committed at once; a store that committed less than LINGER_WHEN_BUSY_S ago and holds fewer
than LINGER_BATCH_MAX appends sleeps COMMIT_LINGER_S once for company, then takes what came; a busy
queue already has company.  The writer's gathering alone, on its queue, with its sleep recorded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backends.sqlite import writer as writer_module
from backends.sqlite.writer import COMMIT_LINGER_S, LINGER_BATCH_MAX, LINGER_WHEN_BUSY_S, Writer, _Append
from rooms.models import Retention


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The writer's sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(writer_module.time, "sleep", slept.append)
    return slept


def appends(n: int) -> list[_Append]:
    return [_Append(None, None) for _ in range(n)]  # type: ignore[arg-type]  # only queued and counted


def writer() -> Writer:
    return Writer(Path("/nonexistent/never-opened.sqlite3"), Retention(), {})


def test_a_lone_append_on_an_idle_store_is_committed_at_once(sleeps: list[float]) -> None:
    w = writer()  # it never committed: idle
    first, = appends(1)
    batch, ended_by = w._gather(first)
    assert batch == [first] and ended_by is None and sleeps == []


def test_a_store_that_just_committed_sleeps_once_for_company_and_takes_what_came(
        sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    w = writer()
    w.committed_at = time.monotonic()  # committed a moment ago: busy
    first, *came = appends(3)
    # What arrives while the writer sleeps is on the queue when it wakes.
    monkeypatch.setattr(writer_module.time, "sleep", lambda s: (sleeps.append(s), [w.queue.put(a) for a in came]))
    batch, ended_by = w._gather(first)
    assert sleeps == [COMMIT_LINGER_S]  # once, the whole linger
    assert batch == [first, *came] and ended_by is None


def test_a_store_idle_for_longer_than_the_busy_window_does_not_linger(sleeps: list[float]) -> None:
    w = writer()
    w.committed_at = time.monotonic() - LINGER_WHEN_BUSY_S - 0.001
    first, = appends(1)
    assert w._gather(first) == ([first], None) and sleeps == []


def test_a_batch_with_company_enough_does_not_linger(sleeps: list[float]) -> None:
    w = writer()
    w.committed_at = time.monotonic()
    first, *queued = appends(LINGER_BATCH_MAX)
    for item in queued:
        w.queue.put(item)
    batch, _ = w._gather(first)
    assert len(batch) == LINGER_BATCH_MAX and sleeps == []
