"""History you can walk, with the SQLite store: paging, the plain "Older messages" link,
resuming from beyond the buffer, retention and truncation, and the room list.
"""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

import pytest

from backends.sqlite.store import SQLiteStore
from chat import make_app, parse_settings
from rooms.models import Draft
from tests.chatclient import User, room_url

OLD_TS = "2020-03-01T08:00:00.000Z"


async def post_many(user: User, count: int, prefix: str = "pesan") -> list[int]:
    ids = []
    for i in range(count):
        resp = await user.post(f"{prefix} {i}")
        assert resp.status == 201, resp.body
        ids.append(resp.json["id"])
    return ids


async def walk_back(user: User, limit: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every page from the newest back, as the API describes; (events oldest first, last answer)."""
    events: list[dict[str, Any]] = []
    resp = await user.poll(limit=limit)
    while True:
        assert resp.status == 200, resp.body
        page = resp.json
        assert len(page["events"]) <= limit
        events[:0] = page["events"]
        if not page["has_more"]:
            return events, page
        resp = await user.poll(before=page["before"], limit=limit)


# -- paging ----------------------------------------------------------------------------------


@pytest.mark.settings(store="sqlite", buffer_size=10, rate_limit=0, presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_paging_walks_the_whole_history_beyond_the_buffer(api):
    ani = await api.join("Ani", "arsip")
    ids = await post_many(ani, 120)  # her first post makes her present: her join is id 1
    assert ids == list(range(2, 122))
    for limit in (1, 7, 50, 200):
        events, last = await walk_back(ani, limit)
        assert [e["id"] for e in events] == [1, *ids]
        assert [(e["type"], e.get("text")) for e in events] == [("join", None)] + [
            ("message", f"pesan {i}") for i in range(120)]
        assert last["truncated"] is False and last["before"] == 1
    page = (await ani.poll(before=31, limit=5)).json
    assert [e["id"] for e in page["events"]] == [26, 27, 28, 29, 30]
    assert (page["before"], page["has_more"], page["truncated"]) == (26, True, False)
    first = (await ani.poll(before=1, limit=5)).json
    assert (first["events"], first["before"], first["has_more"], first["truncated"]) == ([], None, False, False)


@pytest.mark.settings(store="sqlite", rate_limit=0)
@pytest.mark.gen_test
async def test_paging_refuses_bad_arguments(api):
    ani = await api.join("Ani", "arsip")
    await post_many(ani, 3)
    for query, code in ((dict(before=3, limit=201), "bad_request"), (dict(before=3, limit=0), "bad_request"),
                        (dict(before=3, limit="x"), "bad_request"), (dict(before=-1), "invalid_cursor"),
                        (dict(before="1.5"), "invalid_cursor"), (dict(before=3, after=1), "bad_request")):
        resp = await ani.poll(**query)
        assert resp.status == 400, query
        assert resp.json["error"] == code, (query, resp.json)


@pytest.mark.settings(store="sqlite", buffer_size=10, rate_limit=0, presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_older_messages_link_walks_back_without_javascript(api):
    ani = await api.join("Ani", "arsip")
    await post_many(ani, 120)
    seen: list[int] = []
    path = room_url("arsip")
    for _ in range(10):
        resp = await api.request("GET", path, token=ani.token)
        assert resp.status == 200
        page = resp.body.decode()
        ids = [int(i) for i in re.findall(r'data-id="(\d+)"', page)]
        assert ids == sorted(ids) and len(ids) <= 50
        seen[:0] = ids
        link = re.search(r'<a class="older" id="older" href="([^"]+)"([^>]*)>', page)
        assert link is not None
        if "hidden" in link.group(2):
            break
        path = html.unescape(link.group(1))
    assert seen == list(range(1, 122))


# -- resuming from beyond the buffer --------------------------------------------------------


@pytest.mark.settings(store="sqlite", buffer_size=10, rate_limit=0, presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_cursor_older_than_the_buffer_is_answered_exactly_from_disk(api):
    ani = await api.join("Ani", "arsip")
    budi = await api.join("Budi", "arsip")
    await post_many(ani, 60)  # Ani's join is id 1, her messages 2..61
    resp = await budi.poll(after=3, wait=0)  # Budi's poll stores his join, id 62
    body = resp.json
    assert body["truncated"] is False
    assert [e["id"] for e in body["events"]] == list(range(4, 63)) and body["cursor"] == 62
    sock = await ani.ws(after=5, epoch=body["epoch"])
    hello, replay, _ = await sock.handshake()
    assert hello["truncated"] is False and hello["epoch"] == body["epoch"]
    assert [e["id"] for e in replay] == list(range(6, 63))  # Ani was present already: no new join
    sock.close()


# -- retention --------------------------------------------------------------------------------


def test_store_and_retention_options():
    defaults, _, _ = parse_settings(["chat.py"], {})
    assert (defaults.store, defaults.history_max_events, defaults.history_max_age) == ("sqlite", 0, 0.0)
    env = {"OBROLAN_STORE": "memory", "OBROLAN_HISTORY_MAX_EVENTS": "500", "OBROLAN_HISTORY_MAX_AGE": "86400"}
    from_env, _, _ = parse_settings(["chat.py"], env)
    assert (from_env.store, from_env.history_max_events, from_env.history_max_age) == ("memory", 500, 86400.0)
    argv = ["chat.py", "--store=sqlite:/tmp/x.sqlite3", "--history-max-events=9", "--history-max-age=60"]
    from_argv, _, _ = parse_settings(argv, env)
    assert (from_argv.store, from_argv.history_max_events, from_argv.history_max_age) == (
        "sqlite:/tmp/x.sqlite3", 9, 60.0)
    for bad in ({"history_max_events": -1}, {"history_max_age": -0.5}):
        with pytest.raises(ValueError, match="no limit"):
            make_app(dataclasses.replace(defaults, store="memory", cookie_secret="x", **bad))



@pytest.mark.settings(store="sqlite", history_max_events=20, rate_limit=0, presence_grace=60)
@pytest.mark.gen_test(timeout=30)
async def test_retention_by_count_trims_reports_truncation_and_never_reuses_ids(api):
    ani = await api.join("Ani", "singkat")
    joined = (await ani.poll(wait=0)).json  # present from now on (and for the grace): her join is id 1
    assert [e["type"] for e in joined["events"]] == ["join"]
    assert await post_many(ani, 49) == list(range(2, 51))
    events, last = await walk_back(ani, 7)
    assert [e["id"] for e in events] == list(range(31, 51))
    assert last["truncated"] is True and last["has_more"] is False
    gone = (await ani.poll(before=31, limit=10)).json
    assert gone["events"] == [] and gone["truncated"] is True
    old = (await ani.poll(after=10, wait=0, epoch=last["epoch"])).json  # older than what is kept
    assert old["truncated"] is True and [e["id"] for e in old["events"]] == list(range(31, 51))
    exact = (await ani.poll(after=30, wait=0)).json
    assert exact["truncated"] is False and [e["id"] for e in exact["events"]] == list(range(31, 51))
    resp = await ani.post("sesudah")
    assert resp.json["id"] == 51  # a trimmed id is never given again


@pytest.fixture
def aged_history(settings, io_loop):
    """Before the server starts: a room whose first events are years old, written by the store itself."""
    async def seed() -> None:
        store = SQLiteStore(None, settings.data_dir)
        await store.start()
        for room in ("kuno", "campur"):
            await store.open_room(room, 10)
            for i in range(5):
                draft = Draft("message", room, "Ani", f"lama {i}", "s-old")
                draft.ts = OLD_TS
                await store.append(draft)
        for i in range(3):
            await store.append(Draft("message", "campur", "Ani", f"baru {i}", "s-old"))
        await store.close()
    io_loop.run_sync(seed)


@pytest.mark.settings(store="sqlite", history_max_age=3600, rate_limit=0)
@pytest.mark.gen_test(timeout=30)
async def test_retention_by_age_applies_at_start(aged_history, api):
    ani = await api.join("Ani", "campur")
    events, last = await walk_back(ani, 50)  # paging the archive does not make her present
    assert [(e["id"], e["text"]) for e in events] == [(6, "baru 0"), (7, "baru 1"), (8, "baru 2")]
    assert last["truncated"] is True
    old = (await ani.poll(after=2, wait=0)).json  # a poll does: her join is id 9
    assert old["truncated"] is True and [e["id"] for e in old["events"]] == [6, 7, 8, 9]
    empty = await api.join("Budi", "kuno")
    events, last = await walk_back(empty, 50)
    assert events == [] and last["truncated"] is True  # all of it was older than an hour
    resp = await empty.post("hidup lagi")
    assert resp.json["id"] == 7  # after Budi's join, id 6


# -- rooms -----------------------------------------------------------------------------------


@pytest.mark.settings(store="sqlite", rate_limit=0)
@pytest.mark.gen_test
async def test_rooms_lists_stored_rooms_with_users_and_last_activity(aged_history, api):
    resp = await api.request("GET", "/rooms")
    assert resp.status == 200
    listed = {r["room"]: r for r in resp.json["rooms"]}
    assert set(listed) == {"kuno", "campur"}  # from the file: the hub never opened them
    assert listed["kuno"] == {"room": "kuno", "users": 0, "last_activity": OLD_TS}
    assert listed["campur"]["last_activity"] > OLD_TS
    budi = await api.join("Budi", "kuno")
    sock = await budi.ws()
    _, replay, _ = await sock.handshake()
    rooms = (await api.request("GET", "/rooms")).json["rooms"]
    assert rooms[0] == {"room": "kuno", "users": 1, "last_activity": replay[-1]["ts"]}  # busiest first
    page = (await api.request("GET", "/")).body.decode()
    assert 'href="/?room=kuno"' in page  # the join page links the rooms with people in them now
    assert 'href="/?room=campur"' not in page  # (the API lists the rest, with their last activity)
    sock.close()
