"""What the spec fuzzer (tests/process/test_api_fuzz.py) found the server doing against
docs/openapi.yaml, each held by a plain test."""

from __future__ import annotations

import pytest

from tests.chatclient import Api, form_join, room_url


@pytest.mark.gen_test
async def test_every_messages_argument_is_checked_whichever_kind_of_request_it_is(api: Api):
    user = await api.join("Ani", "periksa")
    # a page of history does not use wait, a long-poll does not use limit: both are checked anyway
    for query in ({"limit": 5, "wait": -1}, {"before": 3, "wait": "abc"}, {"after": 0, "wait": 0, "limit": 0},
                  {"after": 0, "wait": 0, "limit": 500}, {"after": 1, "before": 1}):
        resp = await user.poll(**query)
        assert resp.status == 400 and resp.json["error"] == "bad_request", (query, resp.body)
    # an empty value is absent: the last events at once, as without it
    resp = await api.request("GET", room_url("periksa", "/messages?after=&before=&limit=&wait=&epoch="),
                             token=user.token)
    assert resp.status == 200 and set(resp.json) == {"events", "cursor", "epoch", "truncated", "typing"}


@pytest.mark.gen_test
async def test_the_idempotency_key_header_is_checked_whenever_it_is_sent(api: Api):
    user = await api.join("Ani", "kunci")
    for key in ("", "k" * 65, "a\x85b"):
        resp = await user.post("halo", headers={"Idempotency-Key": key}, client_id="c1")
        assert resp.status == 400 and resp.json["error"] == "invalid_client_id", (key, resp.body)
        assert "Idempotency-Key" in resp.json["detail"]
    # client_id null is no client_id: the header is the key
    first = await user.post("sekali", headers={"Idempotency-Key": "k1"}, client_id=None)
    again = await user.post("sekali", headers={"Idempotency-Key": "k1"}, client_id=None)
    assert first.status == again.status == 201 and first.json == again.json
    # a client_id given wins over the header
    other = await user.post("lain", headers={"Idempotency-Key": "k1"}, client_id="c2")
    assert other.status == 201 and other.json["id"] == first.json["id"] + 1


@pytest.mark.gen_test
async def test_leave_and_users_refuse_a_bad_room_with_400(api: Api):
    user = await api.join("Ani", "baik")
    for room in ("a\x01b", "a\u202eb", "x" * 65):
        for resp in (await user.leave(room=room),
                     await api.request("GET", room_url(room, "/users"), token=user.token)):
            assert resp.status == 400 and resp.json["error"] == "invalid_room", (room, resp.body)


@pytest.mark.gen_test
async def test_a_plain_form_join_with_a_mistake_gets_the_form_again_as_html_400(api: Api):
    resp = await form_join(api, "", "dapur")
    assert resp.status == 400 and resp.headers["Content-Type"].startswith("text/html")
    assert b'action="/join"' in resp.body and b'id="name-error"' in resp.body
