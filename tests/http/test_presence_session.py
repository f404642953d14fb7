"""Presence belongs to the session in the room: no-JS and API users appear and are announced once."""

from __future__ import annotations

import pytest

from tests.chatclient import form_join, is_event, is_presence, room_url, session_cookie

HTML = {"Accept": "text/html"}


def people(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["type"], e["user"]) for e in events if e["type"] != "message"]


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_a_curl_user_appears_and_is_announced_once(api):
    ani = await api.join("Ani", "api")
    a = await ani.ws()
    await a.handshake()
    budi = await api.join("Budi", "api")
    for i in range(3):
        assert (await budi.post(f"dari curl {i}")).status == 201
    await budi.poll(after=0, wait=0)
    join = await a.recv_until(is_event("join", "Budi"))
    await a.recv_until(is_presence(["Ani", "Budi"]))
    assert await ani.users() == ["Ani", "Budi"]
    assert await budi.users() == ["Ani", "Budi"]  # his own list has him too
    first = await a.recv_until(is_event("message", "Budi"))
    assert first["id"] == join["id"] + 1  # announced before his first message
    history = (await budi.poll(after=0, wait=0)).json["events"]
    assert people(history) == [("join", "Ani"), ("join", "Budi")]  # once, for all his requests

    assert (await budi.leave()).status == 200
    leave = await a.recv_until(is_event("leave", "Budi"))
    await a.recv_until(is_presence(["Ani"]))
    assert leave["id"] > first["id"] and await ani.users() == ["Ani"]
    a.close()


@pytest.mark.settings(presence_grace=0.3)
@pytest.mark.gen_test
async def test_a_curl_user_leaves_once_after_the_grace_period(api):
    ani = await api.join("Ani", "api-grace")
    a = await ani.ws()
    await a.handshake()
    budi = await api.join("Budi", "api-grace")
    assert (await budi.post("sebentar saja")).status == 201
    await a.recv_until(is_event("join", "Budi"))
    leave = await a.recv_until(is_event("leave", "Budi"), timeout=10)
    await a.recv_until(is_presence(["Ani"]))
    history = (await ani.poll(after=0, wait=0)).json["events"]
    assert people(history) == [("join", "Ani"), ("join", "Budi"), ("leave", "Budi")]
    assert history[-1] == leave
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_a_browser_without_javascript_appears_in_every_list_and_is_announced_once(api):
    ani = await api.join("Ani", "nojs")
    a = await ani.ws()
    await a.handshake()
    cookie = session_cookie(await form_join(api, "Nojs", "nojs"))
    headers = {"Cookie": cookie, **HTML}
    page = await api.request("GET", room_url("nojs"), headers=headers)
    assert page.status == 200
    html = page.body.decode()
    assert "Nojs" in html.split('id="users"', 1)[1].split("</ul>", 1)[0]  # his own list has him
    await a.recv_until(is_event("join", "Nojs"))
    await a.recv_until(is_presence(["Ani", "Nojs"]))
    for text in ("satu", "dua"):  # form posts and page views: no second join
        resp = await api.request("POST", room_url("nojs", "/messages"), headers=headers, form={"text": text})
        assert resp.status == 303
        assert (await api.request("GET", room_url("nojs"), headers=headers)).status == 200
    await a.recv_until(lambda f: f.get("text") == "dua")
    history = (await ani.poll(after=0, wait=0)).json["events"]
    assert people(history) == [("join", "Ani"), ("join", "Nojs")]

    left = await api.request("POST", room_url("nojs", "/leave"), headers=headers, form={})
    assert left.status == 303
    await a.recv_until(is_event("leave", "Nojs"))
    await a.recv_until(is_presence(["Ani"]))
    a.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_long_polls_keep_a_user_present_without_joining_again(api):
    ani = await api.join("Ani", "polls")
    a = await ani.ws()
    await a.handshake()
    budi = await api.join("Budi", "polls")
    cursor = (await budi.poll(after=0, wait=0)).json["cursor"]
    for i in range(5):
        await ani.post(f"pesan {i}")
        body = (await budi.poll(after=cursor, wait=5)).json
        assert [e["text"] for e in body["events"]] == [f"pesan {i}"]
        cursor = body["cursor"]
    history = (await ani.poll(after=0, wait=0)).json["events"]
    assert people(history) == [("join", "Ani"), ("join", "Budi")]
    assert await ani.users() == ["Ani", "Budi"]
    a.close()
