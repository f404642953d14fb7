"""RoomBuffer: the recent tail of a room's sequence that every live read is served from."""

from __future__ import annotations

from rooms.buffer import RoomBuffer
from rooms.models import Event


def event(event_id: int) -> Event:
    return Event(event_id, "message", "r", "Ani", "2024-05-01T08:00:00.000Z", f"pesan {event_id}")


def ids(events: list[Event]) -> list[int]:
    return [e.id for e in events]


def filled(capacity: int, newest: int) -> RoomBuffer:
    buf = RoomBuffer("e1", 0, [], capacity)
    for i in range(1, newest + 1):
        assert ids(buf.append(event(i))) == [i]
    return buf


def test_events_in_order_are_ready_at_once_and_ids_stay_contiguous():
    buf = filled(10, 3)
    assert (buf.first_id, buf.last_id, len(buf)) == (1, 3, 3)
    assert ids(buf.tail(10)) == [1, 2, 3]


def test_an_event_after_a_gap_is_held_back_until_the_gap_fills():
    buf = filled(10, 1)
    assert buf.append(event(3)) == []
    assert buf.append(event(4)) == []
    assert buf.last_id == 1 and ids(buf.tail(10)) == [1]  # nobody is handed 3 and 4 before 2
    assert ids(buf.after(1, 10)) == []
    assert ids(buf.append(event(2))) == [2, 3, 4]  # the gap filled: all of them, in order
    assert buf.last_id == 4 and ids(buf.tail(10)) == [1, 2, 3, 4]


def test_an_event_already_held_or_held_back_is_not_taken_twice():
    buf = filled(10, 2)
    assert buf.append(event(2)) == [] and buf.append(event(1)) == []
    assert buf.append(event(4)) == [] and buf.append(event(4)) == []
    assert ids(buf.append(event(3))) == [3, 4]
    assert ids(buf.tail(10)) == [1, 2, 3, 4]


def test_tail_at_the_edges():
    buf = filled(10, 5)
    assert ids(buf.tail(2)) == [4, 5]
    assert ids(buf.tail(5)) == ids(buf.tail(50)) == [1, 2, 3, 4, 5]
    assert buf.tail(0) == [] and buf.tail(-1) == []
    assert RoomBuffer("e1", 0, [], 10).tail(5) == []


def test_after_and_holds_after_at_the_edges():
    buf = filled(5, 8)  # holds 4..8: 1..3 fell out
    assert (buf.first_id, buf.last_id) == (4, 8)
    assert buf.holds_after(3) and ids(buf.after(3, 100)) == [4, 5, 6, 7, 8]  # every event after 3 is held
    assert not buf.holds_after(2)  # 3 is no longer held
    assert buf.holds_after(8) and buf.after(8, 100) == []  # nothing newer yet
    assert not buf.holds_after(9)  # a cursor beyond the newest event
    assert ids(buf.after(5, 2)) == [6, 7]  # the oldest first: the client continues from the cursor
    assert ids(buf.after(7, 1)) == [8]


def test_before_at_the_edges():
    buf = filled(5, 8)  # holds 4..8
    assert ids(buf.before(7, 2)) == [5, 6]  # the newest ``limit`` older than 7, oldest first
    assert ids(buf.before(7, 10)) == [4, 5, 6]  # no more than is held
    assert ids(buf.before(100, 2)) == [7, 8]  # beyond the newest: from the newest
    assert ids(buf.before(9, 10)) == [4, 5, 6, 7, 8]
    assert buf.before(4, 10) == [] and buf.before(1, 10) == []  # older than what is held
    assert buf.before(7, 0) == []


def test_capacity_keeps_the_newest_events():
    buf = filled(3, 7)
    assert len(buf) == 3 and ids(buf.tail(10)) == [5, 6, 7]
    assert (buf.first_id, buf.last_id) == (5, 7)
    assert ids(buf.append(event(8))) == [8] and ids(buf.tail(10)) == [6, 7, 8]


def test_a_room_loaded_with_history_continues_from_the_store():
    recent = [event(i) for i in range(1, 6)]
    buf = RoomBuffer("e1", 5, recent, 3)  # more recent events than fit: the newest are kept
    assert (buf.first_id, buf.last_id, ids(buf.tail(10))) == (3, 5, [3, 4, 5])
    assert ids(buf.append(event(6))) == [6]

    empty = RoomBuffer("e2", 42, [], 10)  # ids went up to 42 but nothing is held (memory only, or all trimmed)
    assert (empty.first_id, empty.last_id, len(empty)) == (43, 42, 0)
    assert empty.holds_after(42) and not empty.holds_after(41)
    assert empty.append(event(42)) == [] and empty.append(event(44)) == []
    assert ids(empty.append(event(43))) == [43, 44]
