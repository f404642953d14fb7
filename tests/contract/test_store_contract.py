"""The Store contract: one suite, run against every implementation.

Every store gives ids 1, 2, 3, ... per room with no gap and never twice, returns
``(event, created)`` and de-duplicates a retried ``(session, client_id)``, reports
the room's epoch and newest id, and lists rooms by last activity.  Where stores
legitimately differ, ``Store.durable`` says which promise applies:

- a durable store (SQLite, Redis) keeps history beyond the hub's buffer and across a
  restart: ``open_room`` returns the newest events, ``read_after``/``read_before``
  answer from storage, epoch/ids/dedupe keys survive, and retention trims it;
- the memory store keeps nothing the hub's buffer does not hold: ``open_room``
  returns no events, ``read_after`` answers ``None`` ("not held") for anything
  older than the newest id, ``read_before`` nothing, and a restart starts every
  room over with a new epoch.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from backends import open_store
from backends.redis import RedisLink, RedisStore
from rooms import errors
from rooms.models import Draft, Retention, utc_timestamp
from rooms.ports import Store
from tests.redis_helpers import RedisServer

STORES = ["memory", "sqlite", "redis"]


class Stores:
    """Opens stores of one kind on one data dir; a "restart" is a new instance on the same dir."""

    def __init__(self, kind: str, data_dir: Path, redis: RedisServer | None = None) -> None:
        self.kind = kind
        self.data_dir = data_dir
        self.redis = redis  # "redis": a real redis-server; a "restart" is a new store on it
        self.opened: list[Store] = []

    async def open(self, retention: Retention | None = None) -> Store:
        if self.redis is not None:
            store: Store = RedisStore(RedisLink(self.redis.url), retention)
        else:
            store = open_store(self.kind, str(self.data_dir), retention)
        await store.start()
        self.opened.append(store)
        return store

    async def restart(self, store: Store, retention: Retention | None = None) -> Store:
        await store.close()
        self.opened.remove(store)
        return await self.open(retention)


    @asynccontextmanager
    async def writes_refused(self):
        """Make the store refuse writes (reads still work); yields a word the error detail holds."""
        if self.redis is not None:  # out of memory, as a full Redis would be
            self.redis.cli("CONFIG", "SET", "maxmemory", "1")
            try:
                yield "maxmemory"
            finally:
                self.redis.cli("CONFIG", "SET", "maxmemory", "0")
            return
        # Another process holds the write lock (as a backup tool or a second server would).
        locker = sqlite3.connect(self.data_dir / "obrolan.sqlite3", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield "locked"
        finally:
            locker.execute("ROLLBACK")
            locker.close()


@pytest.fixture(params=STORES)
def stores(request, tmp_path, io_loop):
    redis = request.getfixturevalue("contract_redis") if request.param == "redis" else None
    if redis is not None:
        redis.cli("FLUSHALL")
    factory = Stores(request.param, tmp_path / "data", redis)
    yield factory
    for store in factory.opened:
        io_loop.run_sync(store.close)


def msg(room: str, text: str, session: str | None = "s1", client_id: str | None = None,
        user: str = "Ani", ts: str | None = None) -> Draft:
    draft = Draft("message", room, user, text, session, client_id)
    if ts is not None:
        draft.ts = ts
    return draft


async def fill(store: Store, room: str, count: int) -> list[int]:
    ids = []
    for i in range(count):
        event, created = await store.append(msg(room, f"m{i}"))
        assert created
        ids.append(event.id)
    return ids


# -- ids and events ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_ids_start_at_one_and_grow_by_one_per_room(stores):
    store = await stores.open()
    await store.open_room("a", 100)
    await store.open_room("b", 100)
    join, created = await store.append(Draft("join", "a", "Ani", None, "s1"))
    assert created and join.id == 1 and join.type == "join" and join.text is None
    first, _ = await store.append(msg("a", "halo"))
    other, _ = await store.append(msg("b", "di b"))
    second, _ = await store.append(msg("a", "lagi"))
    assert [join.id, first.id, second.id] == [1, 2, 3]
    assert other.id == 1  # ids are per room
    assert (first.type, first.room, first.user, first.text) == ("message", "a", "Ani", "halo")
    assert first.public() == {"id": 2, "type": "message", "room": "a", "user": "Ani", "ts": first.ts, "text": "halo"}


@pytest.mark.gen_test
async def test_concurrent_appends_get_every_id_once(stores):
    store = await stores.open()
    await store.open_room("a", 100)
    results = await asyncio.gather(*(store.append(msg("a", f"m{i}")) for i in range(200)))
    assert sorted(e.id for e, _ in results) == list(range(1, 201))
    assert all(created for _, created in results)
    assert {e.text for e, _ in results} == {f"m{i}" for i in range(200)}


@pytest.mark.gen_test
async def test_appends_get_ids_in_the_order_they_were_made(stores):
    # The WebSocket handler starts a client's posts in arrival order without awaiting each one;
    # the ids (and so the order everyone sees) must follow that order.
    store = await stores.open()
    await store.open_room("a", 100)
    results = await asyncio.gather(*(store.append(msg("a", f"m{i}")) for i in range(300)))
    assert [(e.id, e.text) for e, _ in results] == [(i + 1, f"m{i}") for i in range(300)]


# -- exactly once ---------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_retry_with_same_client_id_returns_the_first_event_and_stores_nothing(stores):
    store = await stores.open()
    await store.open_room("a", 100)
    first, created = await store.append(msg("a", "sekali", client_id="c-1"))
    assert created
    again, created_again = await store.append(msg("a", "sekali", client_id="c-1"))
    assert not created_again
    assert (again.id, again.text, again.ts) == (first.id, "sekali", first.ts)
    changed, created_changed = await store.append(msg("a", "teks lain", client_id="c-1"))
    assert not created_changed and changed.id == first.id and changed.text == "sekali"
    nxt, _ = await store.append(msg("a", "berikutnya"))
    assert nxt.id == first.id + 1  # the retries consumed no id


@pytest.mark.gen_test
async def test_client_id_is_scoped_to_session_and_room(stores):
    store = await stores.open()
    await store.open_room("a", 100)
    await store.open_room("b", 100)
    mine, _ = await store.append(msg("a", "x", session="s1", client_id="same"))
    theirs, created = await store.append(msg("a", "x", session="s2", client_id="same"))
    assert created and theirs.id == mine.id + 1
    elsewhere, created = await store.append(msg("b", "x", session="s1", client_id="same"))
    assert created and elsewhere.id == 1


@pytest.mark.gen_test
async def test_without_client_id_every_append_is_new(stores):
    store = await stores.open()
    await store.open_room("a", 100)
    ids = [(await store.append(msg("a", "sama")))[0].id for _ in range(3)]
    assert ids == [1, 2, 3]


@pytest.mark.gen_test
async def test_concurrent_retries_store_once(stores):
    store = await stores.open()
    await store.open_room("a", 100)
    results = await asyncio.gather(*(store.append(msg("a", "balapan", client_id="race")) for _ in range(20)),
                                   *(store.append(msg("a", f"lain {i}")) for i in range(5)))
    race = results[:20]
    assert len({e.id for e, _ in race}) == 1
    assert sum(created for _, created in race) == 1
    assert sorted(e.id for e, _ in [race[0], *results[20:]]) == list(range(1, 7))


# -- rooms, epochs, restarts ----------------------------------------------------------------


@pytest.mark.gen_test
async def test_open_room_reports_epoch_newest_id_and_recent_events(stores):
    store = await stores.open()
    empty = await store.open_room("a", 3)
    assert empty.last_id == 0 and empty.recent == [] and empty.epoch
    await fill(store, "a", 5)
    state = await store.open_room("a", 3)
    assert state.epoch == empty.epoch and state.last_id == 5
    if store.durable:
        assert [e.id for e in state.recent] == [3, 4, 5]  # the newest, oldest first
        assert [e.text for e in state.recent] == ["m2", "m3", "m4"]
    else:
        assert state.recent == []  # the hub's buffer is the only history


@pytest.mark.gen_test
async def test_restart(stores):
    store = await stores.open()
    before = await store.open_room("a", 10)
    await fill(store, "a", 3)
    sent, _ = await store.append(msg("a", "kunci", client_id="k"))
    store = await stores.restart(store)
    after = await store.open_room("a", 10)
    if store.durable:
        assert after.epoch == before.epoch and after.last_id == 4
        assert [e.id for e in after.recent] == [1, 2, 3, 4]
        retry, created = await store.append(msg("a", "kunci", client_id="k"))
        assert not created and retry.id == sent.id  # dedupe survives the restart
        nxt, _ = await store.append(msg("a", "baru"))
        assert nxt.id == 5  # ids continue
    else:
        assert after.epoch != before.epoch and after.last_id == 0 and after.recent == []
        nxt, _ = await store.append(msg("a", "baru"))
        assert nxt.id == 1  # a new sequence, told apart by the new epoch


@pytest.mark.gen_test
async def test_forget_room(stores):
    store = await stores.open()
    before = await store.open_room("a", 10)
    await fill(store, "a", 2)
    store.forget_room("a")
    after = await store.open_room("a", 10)
    if store.durable:
        assert (after.epoch, after.last_id) == (before.epoch, 2)
    else:
        assert after.epoch != before.epoch and after.last_id == 0


@pytest.mark.gen_test
async def test_list_rooms_has_rooms_with_events_newest_activity_first(stores):
    store = await stores.open()
    for room in ("sepi", "lama", "baru"):
        await store.open_room(room, 10)
    await store.append(msg("lama", "dulu", ts="2020-06-01T00:00:00.000Z"))
    newest, _ = await store.append(msg("baru", "kini"))
    infos = await store.list_rooms()
    assert [(i.room, i.last_id) for i in infos] == [("baru", 1), ("lama", 1)]  # "sepi" has no events
    assert infos[0].last_ts == newest.ts and infos[1].last_ts == "2020-06-01T00:00:00.000Z"


# -- reading history ------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_read_after(stores):
    store = await stores.open()
    await store.open_room("a", 10)
    await fill(store, "a", 10)
    assert await store.read_after("a", 10, 5) == []  # nothing newer
    assert await store.read_after("nowhere", 0, 5) == []
    got = await store.read_after("a", 3, 4)
    if store.durable:
        assert [e.id for e in got] == [4, 5, 6, 7]
        assert [e.id for e in await store.read_after("a", 0, 100)] == list(range(1, 11))
    else:
        assert got is None  # not held: the hub answers truncated


@pytest.mark.gen_test
async def test_read_before(stores):
    store = await stores.open()
    await store.open_room("a", 10)
    await fill(store, "a", 10)
    page = await store.read_before("a", 8, 3)
    if store.durable:
        assert [e.id for e in page] == [5, 6, 7]
        assert [e.id for e in await store.read_before("a", 3, 50)] == [1, 2]
        assert await store.read_before("a", 1, 50) == []
        assert [e.id for e in await store.read_before("a", 10**12, 2)] == [9, 10]
    else:
        assert page == []


# -- retention -------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_retention_by_count_never_reuses_an_id(stores):
    store = await stores.open(Retention(max_events=4))
    await store.open_room("a", 10)
    await fill(store, "a", 10)
    if not store.durable:
        assert await store.trim() == 0  # keeps only the hub's buffer, sized by the retention
        return
    assert [e.id for e in await store.read_before("a", 100, 100)] == [7, 8, 9, 10]
    assert await store.read_after("a", 2, 100) is None  # a cursor older than what is kept
    assert [e.id for e in await store.read_after("a", 6, 100)] == [7, 8, 9, 10]
    nxt, _ = await store.append(msg("a", "sesudah"))
    assert nxt.id == 11
    store = await stores.restart(store, Retention(max_events=2))  # tighter at start: trimmed then
    state = await store.open_room("a", 10)
    assert state.last_id == 11 and [e.id for e in state.recent] == [10, 11]


@pytest.mark.gen_test
async def test_retention_by_age(stores):
    store = await stores.open()
    await store.open_room("a", 10)
    await store.open_room("b", 10)
    for i in range(3):
        await store.append(msg("a", f"lama {i}", ts="2020-01-01T00:00:00.000Z"))
        await store.append(msg("b", f"lama {i}", ts="2020-01-01T00:00:00.000Z"))
    await store.append(msg("a", "baru", ts=utc_timestamp()))
    store = await stores.restart(store, Retention(max_age_s=3600))
    if not store.durable:
        assert await store.trim() == 0
        return
    # Trimmed at start: "a" keeps its new event, "b" keeps nothing, and neither reuses an id.
    assert [e.text for e in await store.read_before("a", 100, 100)] == ["baru"]
    assert await store.read_after("a", 0, 100) is None
    b = await store.open_room("b", 10)
    assert b.last_id == 3 and b.recent == []
    assert await store.read_after("b", 1, 100) is None
    assert await store.read_after("b", 3, 100) == []
    nxt, _ = await store.append(msg("b", "lagi"))
    assert nxt.id == 4
    await store.append(msg("a", "kuno", ts="2020-01-01T00:00:00.000Z"))
    assert await store.trim() == 0  # only a prefix is trimmed: what is kept stays contiguous
    assert [e.id for e in await store.read_before("a", 100, 100)] == [4, 5]


# -- failures --------------------------------------------------------------------------------


@pytest.mark.gen_test(timeout=20)
async def test_a_failed_write_raises_store_error_consumes_no_id_and_reads_go_on(stores):
    store = await stores.open()
    await store.open_room("a", 10)
    await fill(store, "a", 3)
    if not store.durable:
        return  # memory appends cannot fail
    async with stores.writes_refused() as why:
        results = await asyncio.gather(store.append(msg("a", "gagal", client_id="g")),
                                       store.append(msg("a", "gagal juga")), return_exceptions=True)
        for result in results:
            assert isinstance(result, errors.StoreError)
            assert result.code == "store_error" and why in result.detail
        assert [e.id for e in await store.read_before("a", 100, 100)] == [1, 2, 3]
    retried, created = await store.append(msg("a", "gagal", client_id="g"))
    assert created and retried.id == 4  # the failed batch took no id
    assert [e.text for e in await store.read_after("a", 0, 100)] == ["m0", "m1", "m2", "gagal"]
