"""Truth at the edges: look-alike names, one client_id rule, room names that survive the URL."""

from __future__ import annotations

import html
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError

from tests.chatclient import Api, form_join, is_presence, raw_request, room_url, session_cookie

JSON_ACCEPT = {"Accept": "application/json"}
HTML_ACCEPT = {"Accept": "text/html"}

LOOK_ALIKES = ["Bud\u0456", "\u0412udi", "\u0392udi", "Ｂｕｄｉ", "Budı", "𝐁udi", "BUDI"]
INVISIBLE = ["Budi\u200b", "Bu\u00addi", "Bu\u200ddi", "\u202eiduB", "Budi\u2066", "\u3164Budi"]
WORLD_NAMES = ["Sari Dewi", "ꦧꦸꦢꦶ", "王小明", "محمد", "😀 Budi", "👩\u200d💻 Sari", "Budi 🇮🇩", "Ñoño", "Ngô Bảo"]


async def json_join(api: Api, name: str, room: str):
    return await api.request("POST", "/join", json_body={"name": name, "room": room}, headers=JSON_ACCEPT)


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_names_that_look_like_a_present_member_clash_and_invisible_ones_are_refused(api):
    budi = await api.join("Budi", "kembar")
    b = await budi.ws()
    await b.handshake()
    for name in LOOK_ALIKES:
        resp = await json_join(api, name, "kembar")
        assert resp.status == 409 and resp.json["error"] == "name_taken", (name, resp.body)
    for name in INVISIBLE:
        resp = await json_join(api, name, "kembar")
        assert resp.status == 400 and resp.json["error"] == "invalid_name", (name, resp.body)
        assert "invisible" in resp.json["detail"]
    for room in ("kembar\u200b", "\u202ekembar"):
        resp = await json_join(api, "Ani", room)
        assert resp.status == 400 and resp.json["error"] == "invalid_room", (room, resp.body)
    # A browser gets the form again, with the message, not JSON.
    form = await form_join(api, "\u0412udi", "kembar", headers=HTML_ACCEPT)
    assert form.status == 409 and form.headers["Content-Type"].startswith("text/html")
    assert "This name is taken in this room right now." in html.unescape(form.body.decode())
    b.close()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test(timeout=30)
async def test_names_in_every_script_and_emoji_still_work_and_stay_apart(api):
    users = []
    for name in WORLD_NAMES:
        resp = await json_join(api, name, "dunia")
        assert resp.status == 200, (name, resp.body)
        user = await api.join(name, "dunia")
        sock = await user.ws()
        await sock.handshake()
        users.append(sock)
    expected = sorted(WORLD_NAMES, key=str.casefold)
    assert await user.users() == expected  # nine people, none mistaken for another
    await users[0].recv_until(is_presence(expected))
    for sock in users:
        sock.close()


@pytest.mark.gen_test
async def test_a_client_id_given_is_checked_by_one_rule_over_http_and_websocket(api):
    ani = await api.join("Ani", "kunci")
    sock = await ani.ws()
    await sock.handshake()
    for bad in (0, False, "", [], {}, 12, "x" * 65):
        resp = await api.request("POST", room_url("kunci", "/messages"), token=ani.token,
                                 json_body={"text": "halo", "client_id": bad})
        assert resp.status == 400 and resp.json["error"] == "invalid_client_id", (bad, resp.body)
        await sock.send({"type": "message", "text": "halo", "client_id": bad})
        frame = await sock.recv_until(lambda f: f.get("type") == "error")
        assert frame["error"] == "invalid_client_id", (bad, frame)
    form = await api.request("POST", room_url("kunci", "/messages"), token=ani.token,
                             form={"text": "halo", "client_id": ""})
    assert form.status == 400 and form.json["error"] == "invalid_client_id"
    history = (await ani.poll(after=0, wait=0)).json["events"]
    assert [e["type"] for e in history] == ["join"]  # nothing was stored by any of them
    sock.close()


@pytest.mark.gen_test
async def test_dot_rooms_are_refused_and_every_accepted_room_name_survives_the_url(api):
    for room in (".", ".."):
        resp = await json_join(api, "Ani", room)
        assert resp.status == 400 and resp.json["error"] == "invalid_room", resp.body
        form = await form_join(api, "Ani", room, headers=HTML_ACCEPT)
        assert form.status == 400 and "A room name cannot be “.” or “..”." in html.unescape(form.body.decode())
    for room in ("...", ". .", "a?b#c", "50% off", "a+b&c=d", "café", "Proyek PBO", "%2F", "\\", "😀", "~x"):
        resp = await form_join(api, "Ani", room)
        assert resp.status == 303, (room, resp.body)
        location = resp.headers["Location"]
        assert location == "/rooms/" + quote(room, safe="")
        page = await api.request("GET", location, headers={"Cookie": session_cookie(resp), **HTML_ACCEPT})
        assert page.status == 200, (room, page.status)
        assert f'data-room="{html.escape(room)}"' in page.body.decode() or html.escape(room) in page.body.decode()


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_a_raw_utf8_path_names_the_same_room_as_the_percent_encoded_one(api):
    ani = await api.join("Ani", "café")
    assert (await ani.post("halo dari kafe")).status == 201
    reader, writer = await raw_request(api.base_url, "GET", "/rooms/café/messages?after=0&wait=0",
                                       headers={"Authorization": f"Bearer {ani.token}"})
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
        length = int(lengths[0])
        body = (await reader.readexactly(length)).decode()
    finally:
        writer.close()
    assert "halo dari kafe" in body and '"room":"café"' in body


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_reading_a_room_nobody_joined_is_404_and_creates_nothing(api):
    ani = await api.join("Ani", "ada")
    for method, path in (("GET", room_url("salah ketik", "/messages?after=0&wait=0")),
                         ("GET", room_url("salah ketik", "/users")),
                         ("POST", room_url("salah ketik", "/messages"))):
        resp = await api.request(method, path, token=ani.token,
                                 json_body={"text": "halo"} if method == "POST" else None)
        assert resp.status == 404 and resp.json["error"] == "no_such_room", (method, path, resp.body)
    with pytest.raises(HTTPClientError) as refused:
        await ani.ws(room="salah ketik")
    assert refused.value.code == 404
    rooms = [r["room"] for r in (await api.request("GET", "/rooms")).json["rooms"]]
    assert "salah ketik" not in rooms
    # A browser with a session gets the join form for it, in its words, not JSON.
    cookie = session_cookie(await form_join(api, "Budi", "ada"))
    page = await api.request("GET", room_url("salah ketik"), headers={"Cookie": cookie, **HTML_ACCEPT})
    assert page.status == 404 and "Join it to start it" in page.body.decode()
    # The join creates it; the join page lists it once someone is in it.
    joined = await json_join(api, "Citra", "salah ketik")
    assert joined.status == 200
    citra = await api.join("Citra2", "salah ketik")
    assert (await citra.poll(after=0, wait=0)).status == 200
    assert 'href="/?room=salah%20ketik"' in (await api.request("GET", "/")).body.decode()
