"""Leave in one tab, and the browser's other tabs do not join the room again behind the person's back.

A browser's session shares one cookie between its tabs.  After Leave, every request of that session
in the room (a poll, a stream, a WebSocket, a typing notice, a message, the page) is told "you left"
until the person joins again; the old tab's connection in progress is ended the same way.
"""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.chatclient import form_join, is_event, room_url, session_cookie, set_cookie

HTML = {"Accept": "text/html"}


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_after_leave_the_sessions_other_requests_are_told_and_do_not_join_again(api):
    ani = await api.join("Ani", "kelas")
    a = await ani.ws()
    await a.handshake()
    session = session_cookie(await form_join(api, "Sari", "kelas"))
    assert (await api.request("GET", room_url("kelas"), headers={"Cookie": session, **HTML})).status == 200
    await a.recv_until(is_event("join", "Sari"))

    leave = await api.request("POST", room_url("kelas", "/leave"), headers={"Cookie": session}, form={})
    assert leave.status == 303
    cookies = {"Cookie": f"{session}; {set_cookie(leave, 'obrolan_left')}"}  # what every tab now sends
    await a.recv_until(is_event("leave", "Sari"))

    poll = await api.request("GET", room_url("kelas", "/messages?after=0&wait=0"), headers=cookies)
    assert poll.status == 410 and poll.json["error"] == "left" and "join again" in poll.json["detail"]
    typing = await api.request("POST", room_url("kelas", "/typing"), headers=cookies)
    assert typing.status == 410 and typing.json["error"] == "left"
    post = await api.request("POST", room_url("kelas", "/messages"), headers={**cookies, "Accept": "application/json"},
                             json_body={"text": "tidak terkirim"})
    assert post.status == 410 and post.json["error"] == "left"
    form_post = await api.request("POST", room_url("kelas", "/messages"), headers={**cookies, **HTML},
                                  form={"text": "juga tidak"})
    page = await api.request("GET", room_url("kelas"), headers={**cookies, **HTML})
    for resp in (form_post, page):  # the join form, filled in, saying why
        html = resp.body.decode()
        assert resp.status == 410 and 'id="name"' in html and 'value="Sari"' in html and 'value="kelas"' in html
        assert "You left this room (here or in another tab). Join it again to send and read here." in html
    stream = await api.request("GET", room_url("kelas", "/events?after=0&format=ndjson"), headers=cookies)
    assert stream.status == 200
    assert [json.loads(line) for line in stream.body.decode().splitlines() if line] == [
        {"type": "end", "reason": "left", "detail": "you left the room", "reconnect": False}]
    ws = await websocket_connect(HTTPRequest(api.base_url.replace("http", "ws", 1) + room_url("kelas", "/ws"),
                                             headers=cookies))
    assert await ws.read_message() is None and ws.close_code == 1000  # as when the leave happens
    assert await ani.users() == ["Ani"]  # none of that joined the room again
    history = (await ani.poll(after=0)).json["events"]
    assert [(e["type"], e["user"]) for e in history if e["user"] == "Sari"] == [("join", "Sari"), ("leave", "Sari")]

    # Joining again (the form, same name: the same session) lets every tab back in.
    again = await api.request("POST", "/join", form={"name": "Sari", "room": "kelas"}, headers=cookies)
    assert again.status == 303
    cookies = {"Cookie": f"{session}; {set_cookie(again, 'obrolan_left')}"}
    assert (await api.request("GET", room_url("kelas"), headers={**cookies, **HTML})).status == 200
    await a.recv_until(is_event("join", "Sari"))
    poll = await api.request("GET", room_url("kelas", "/messages?after=0&wait=0"), headers=cookies)
    assert poll.status == 200
    a.close()
