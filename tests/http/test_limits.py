"""Limits and bad input: every one answers a clear error (HTTP JSON or a WebSocket error frame), never a 500."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from handlers.base import encode_session
from rooms import Session
from tests.chatclient import Api, form_join, is_event, room_url, session_cookie

JSON_ACCEPT = {"Accept": "application/json"}
WS_UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status == status, (resp.status, resp.body)
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers.get("Content-Type")
    body = resp.json
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]


async def json_join(api: Api, name, room):
    return await api.request("POST", "/join", json_body={"name": name, "room": room}, headers=JSON_ACCEPT)


# -- names, rooms, texts -------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_name_and_room_lengths(api):
    assert (await json_join(api, "n" * 32, "r" * 64)).status == 200
    assert (await json_join(api, "日" * 32, "部屋" * 32)).status == 200  # characters, not bytes
    assert_error(await json_join(api, "n" * 33, "lobby"), 400, "invalid_name")
    assert_error(await json_join(api, "Ani", "r" * 65), 400, "invalid_room")
    ok = await json_join(api, "  Ani  ", "  lobby ")
    assert ok.json["name"] == "Ani" and ok.json["room"] == "lobby"  # trimmed
    assert (await json_join(api, " " + "n" * 32 + " ", "lobby")).status == 200  # length counts after trimming
    user = await api.join("Ani", "lobby")
    assert_error(await user.poll(room="r" * 65), 400, "invalid_room")


@pytest.mark.gen_test
async def test_empty_after_trimming(api):
    for name, room, code in (("", "lobby", "invalid_name"), ("   ", "lobby", "invalid_name"),
                             ("Ani", "", "invalid_room"), ("Ani", "   ", "invalid_room"),
                             (None, "lobby", "invalid_name"), ("Ani", None, "invalid_room"),
                             (42, "lobby", "invalid_name"), ("Ani", ["lobby"], "invalid_room")):
        assert_error(await json_join(api, name, room), 400, code)
    user = await api.join("Ani", "lobby")
    for text in ("", "   ", "\n\t \n", None, 7, ["halo"], {"text": "halo"}):
        assert_error(await user.post(text), 400, "invalid_text")
    poll = await user.poll(after=0, wait=0)
    assert [e["type"] for e in poll.json["events"]] == ["join"]  # nothing was stored


@pytest.mark.gen_test
async def test_message_length(api):
    user = await api.join("Ani", "long")
    ok = await user.post("  " + "x" * 2000 + "\n")
    assert ok.status == 201 and ok.json["text"] == "x" * 2000
    assert_error(await user.post("x" * 2001), 400, "invalid_text")
    assert (await user.post("日" * 2000)).status == 201


@pytest.mark.gen_test
async def test_a_message_of_the_longest_length_fits_the_body_however_it_is_written(api):
    """The limit is 2,000 characters whatever they are: a message of 2,000 emoji, posted as JSON
    with every character escaped or as a form (each UTF-8 byte as %XX: 12 bytes a character), is
    taken, not refused as a body too large; 2,001 is refused for its length."""
    user = await api.join("Ani", "panjang")
    path = room_url("panjang", "/messages")
    for n, text in ((1, "😀" * 2000), (2, "語😀" * 1000)):
        as_json = await user.post(text, client_id=f"json-{n}")  # json.dumps escapes: \ud83d\ude00
        assert as_json.status == 201 and as_json.json["text"] == text, (as_json.status, as_json.body[:200])
        as_form = await api.request("POST", path, token=user.token, form={"text": text, "client_id": f"form-{n}"},
                                    headers=JSON_ACCEPT)
        assert as_form.status == 201 and as_form.json["text"] == text, (as_form.status, as_form.body[:200])
    assert_error(await user.post("😀" * 2001), 400, "invalid_text")


@pytest.mark.settings(max_message_length=10)
@pytest.mark.gen_test
async def test_message_length_is_configurable(api):
    user = await api.join("Ani", "short")
    assert (await user.post("0123456789")).status == 201
    resp = await user.post("0123456789a")
    assert_error(resp, 400, "invalid_text")
    assert "10" in resp.json["detail"]


# C0 controls (tab and newline included), DEL, C1 controls, line and paragraph separators
CONTROLS = ["\x00", "\n", "\t", "\r", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]


@pytest.mark.gen_test
async def test_control_characters_are_refused_not_stripped(api):
    for ch in CONTROLS:
        assert_error(await json_join(api, "An" + ch + "i", "lobby"), 400, "invalid_name")
        assert_error(await json_join(api, "Ani" + ch, "lobby"), 400, "invalid_name")  # not trimmed away
        form = await api.request("POST", "/join", form={"name": "An" + ch + "i", "room": "lobby"},
                                 headers=JSON_ACCEPT)
        assert_error(form, 400, "invalid_name")
        assert_error(await json_join(api, "Ani", "lob" + ch + "by"), 400, "invalid_room")
    user = await api.join("Ani", "ctl")
    # (a CR in a message is a line break, stored as LF: tests/http/test_line_breaks.py)
    for text in ("a\x00b", "a\x0bb", "bell\x07", "a\x1bb", "a\u2029b", "a\x9bb"):
        assert_error(await user.post(text), 400, "invalid_text")
        form = await api.request("POST", room_url("ctl", "/messages"), token=user.token, form={"text": text})
        assert_error(form, 400, "invalid_text")
    # room names in the path are checked raw too
    assert_error(await user.poll(room="a\x00b"), 400, "invalid_room")
    # newline and tab are fine inside a message, and kept exactly
    ok = await user.post("baris satu\nbaris dua\tdengan tab")
    assert ok.status == 201 and ok.json["text"] == "baris satu\nbaris dua\tdengan tab"
    poll = await user.poll(after=0, wait=0)  # Ani's first post made her present: her join, then it
    assert [e.get("text") for e in poll.json["events"]] == [None, "baris satu\nbaris dua\tdengan tab"]


@pytest.mark.gen_test
async def test_unicode_is_nfc_normalised(api):
    user = await api.join("Jose\u0301", "Cafe\u0301")
    resp = await user.post("Cafe\u0301 di Ñandu\u0301")
    assert resp.status == 201
    assert resp.json["text"] == "Caf\u00e9 di Ñand\u00fa"
    assert resp.json["user"] == "Jos\u00e9" and resp.json["room"] == "Caf\u00e9"
    # the composed and the decomposed spelling are one room
    same = await user.poll(room="Caf\u00e9", after=0, wait=0)
    assert resp.json in same.json["events"]


# -- malformed requests ------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_bad_cursor_is_400(api):
    user = await api.join("Ani", "cursor")
    for after in ("abc", "-1", "1.5", "1e3", " 1", "+1", "\uff11", "\u00b2", "1" * 40):
        assert_error(await user.poll(after=after, wait=0), 400, "invalid_cursor")
        ws = await api.request("GET", room_url("cursor", "/ws?after=") + after.replace(" ", "%20").replace(
            "+", "%2B"), token=user.token, headers=WS_UPGRADE)
        assert_error(ws, 400, "invalid_cursor")


@pytest.mark.gen_test
async def test_invalid_json_body_is_400(api):
    user = await api.join("Ani", "json")
    for body in (b"{", b"[1, 2]", b'"halo"', b"null", b"\xff\xfe", b"{'text': 'x'}"):
        hdrs = {"Content-Type": "application/json", **JSON_ACCEPT}
        assert_error(await api.request("POST", "/join", body=body, headers=hdrs), 400, "invalid_json")
        msg = await api.request("POST", room_url("json", "/messages"), token=user.token, body=body, headers=hdrs)
        assert_error(msg, 400, "invalid_json")


@pytest.mark.gen_test
async def test_http_body_over_the_limit_is_413(api):
    user = await api.join("Ani", "big")
    big = json.dumps({"text": "x" * 40000})  # over the limit (28 KiB for 2,000 characters)
    resp = await api.request("POST", room_url("big", "/messages"), token=user.token, body=big,
                             headers={"Content-Type": "application/json"})
    assert_error(resp, 413, "payload_too_large")
    join = await api.request("POST", "/join", body="name=Ani&room=" + "r" * 40000,
                             headers={"Content-Type": "application/x-www-form-urlencoded", **JSON_ACCEPT})
    assert_error(join, 413, "payload_too_large")


@pytest.mark.gen_test
async def test_missing_or_invalid_bearer_is_401(api):
    user = await api.join("Ani", "auth")
    forged = encode_session("not-the-secret", Session("x" * 32, "Ani"))
    tampered = user.token[:-2] + ("00" if not user.token.endswith("00") else "11")
    bad_headers = [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer garbage"},
                   {"Authorization": f"Bearer {forged}"}, {"Authorization": f"Bearer {tampered}"},
                   {"Authorization": f"Basic {user.token}"}, {"Cookie": "obrolan_session=garbage"}]
    for hdrs in bad_headers:
        for method, path in (("GET", "/messages?after=0&wait=0"), ("POST", "/messages"), ("GET", "/users"),
                             ("POST", "/leave"), ("GET", "/ws")):
            extra = WS_UPGRADE if path == "/ws" else {"Content-Type": "application/json"} if method == "POST" else {}
            body = '{"text": "halo"}' if method == "POST" else None
            resp = await api.request(method, room_url("auth", path), body=body, headers={**hdrs, **extra})
            assert_error(resp, 401, "unauthorized")
    assert (await user.post("masih boleh")).status == 201


@pytest.mark.gen_test
async def test_unknown_path_and_method_are_json(api):
    for path in ("/nope", "/rooms/", "/rooms/a/b/c", "/rooms/a/messages/x", "/join/x", "/healthz/x"):
        assert_error(await api.request("GET", path), 404, "not_found")
    assert_error(await api.request("DELETE", "/join"), 405, "method_not_allowed")
    assert_error(await api.request("PUT", room_url("a", "/messages"), body="{}"), 405, "method_not_allowed")


@pytest.mark.gen_test
async def test_plain_get_on_the_websocket_path_is_a_json_error(api):
    user = await api.join("Ani", "plain")
    resp = await api.request("GET", room_url("plain", "/ws"), token=user.token)
    assert resp.status == 400 and resp.json["error"] == "bad_request"


# -- rate limits --------------------------------------------------------------------------------------


@pytest.mark.settings(rate_limit=1, rate_burst=3)
@pytest.mark.usefixtures("rate_clock_stopped")
@pytest.mark.gen_test
async def test_rate_limit_http_429_with_retry_after(api):
    ani = await api.join("Ani", "rate")
    budi = await api.join("Budi", "rate")
    for i in range(3):
        assert (await ani.post(f"m{i}")).status == 201
    resp = await ani.post("satu lagi")
    assert_error(resp, 429, "rate_limited")
    assert resp.headers["Retry-After"] == "1"
    assert resp.json["retry_after"] == 1
    assert (await budi.post("aku masih boleh")).status == 201  # per session
    poll = await budi.poll(after=0, wait=0)
    assert "satu lagi" not in [e.get("text") for e in poll.json["events"]]


@pytest.mark.settings(rate_limit=1, rate_burst=3)
@pytest.mark.usefixtures("rate_clock_stopped")
@pytest.mark.gen_test
async def test_rate_limit_websocket_frame_and_connection_stays_open(api):
    ani = await api.join("Ani", "rate-ws")
    a = await ani.ws()
    await a.handshake()
    for i in range(4):
        await a.send({"type": "message", "text": f"m{i}", "client_id": f"c{i}"})
    got = [await a.recv_until(lambda f: f["type"] in ("message", "error")) for _ in range(4)]
    assert [f["type"] for f in got] == ["message", "message", "message", "error"]
    err = got[3]
    assert err["error"] == "rate_limited" and err["retry_after"] == 1 and err["client_id"] == "c3"
    assert err["detail"]
    # the bucket is per session, shared by every transport
    assert_error(await ani.post("lewat HTTP"), 429, "rate_limited")
    # still open: it answers the next frame
    await a.send({"type": "bogus"})
    assert (await a.recv_until(lambda f: f["type"] == "error"))["error"] == "unknown_type"
    a.close()


# -- WebSocket frames ------------------------------------------------------------------------------------


BAD_FRAMES = [
    ("not json", "invalid_json"),
    ("{", "invalid_json"),
    ("[]", "invalid_json"),
    ("null", "invalid_json"),
    ("42", "invalid_json"),
    ('"message"', "invalid_json"),
    (b"\x00\xff", "invalid_json"),
    ({"type": "shout", "text": "halo"}, "unknown_type"),
    ({"type": None}, "unknown_type"),
    ({"text": "no type"}, "unknown_type"),
    ({"type": ["message"]}, "unknown_type"),
    ({"type": "message"}, "invalid_text"),
    ({"type": "message", "text": ""}, "invalid_text"),
    ({"type": "message", "text": "   "}, "invalid_text"),
    ({"type": "message", "text": "x" * 2001}, "invalid_text"),
    ({"type": "message", "text": 5}, "invalid_text"),
    ({"type": "message", "text": {"a": 1}}, "invalid_text"),
    ({"type": "message", "text": "a\x00b"}, "invalid_text"),
    ({"type": "message", "text": "a\x0cb"}, "invalid_text"),  # a CR would be a line break (LF)
    ({"type": "message", "text": "ok", "client_id": 5}, "invalid_client_id"),
    ({"type": "message", "text": "ok", "client_id": "x" * 65}, "invalid_client_id"),
]


@pytest.mark.gen_test
async def test_bad_websocket_frames_get_error_frames_and_the_connection_stays_open(api):
    ani = await api.join("Ani", "frames")
    a = await ani.ws()
    hello, _, _ = await a.handshake()
    for frame, code in BAD_FRAMES:
        if isinstance(frame, bytes):
            await a.conn.write_message(frame, binary=True)
        else:
            await a.send(frame)
        err = await a.recv()
        assert err["type"] == "error" and err["error"] == code, (frame, err)
        assert isinstance(err["detail"], str) and err["detail"]
    await a.send({"type": "message", "text": "masih tersambung"})
    got = await a.recv()
    assert (got["type"], got["text"], got["id"]) == ("message", "masih tersambung", hello["cursor"] + 1)
    a.close()


@pytest.mark.gen_test
async def test_websocket_frame_over_64_kib_closes_with_1009(api):
    ani = await api.join("Ani", "huge")
    a = await ani.ws()
    await a.handshake()
    await a.send({"type": "message", "text": "x" * 70000})
    assert await a.closed() == 1009
    # just under the limit is a frame like any other (and gets a validation error, not a close)
    b = await ani.ws()
    await b.handshake()
    await b.send({"type": "message", "text": "x" * 60000})
    assert (await b.recv_until(lambda f: f["type"] == "error"))["error"] == "invalid_text"
    b.close()


# -- origins and cross-site posts -------------------------------------------------------------------------


@pytest.mark.settings(allowed_origins=["https://chat.example"])
@pytest.mark.gen_test
async def test_websocket_origin_check(api, http_port):
    ani = await api.join("Ani", "origin")
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{http_port + 1}", "https://chat.example.evil",
                   "http://[", "http://evil.example:80@127.0.0.1"):
        resp = await api.request("GET", room_url("origin", "/ws"), token=ani.token,
                                 headers={**WS_UPGRADE, "Origin": origin})
        assert_error(resp, 403, "forbidden")
    # what a browser sends for a WebSocket opened by another site's page
    cross = await api.request("GET", room_url("origin", "/ws"), token=ani.token, headers={
        **WS_UPGRADE, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert_error(cross, 403, "forbidden")
    with pytest.raises(HTTPClientError) as refused:
        await ani.ws(headers={"Origin": "http://evil.example"})
    assert refused.value.code == 403
    allowed = await ani.ws(headers={"Origin": "https://chat.example", "Sec-Fetch-Site": "cross-site"})
    assert (await allowed.recv())["type"] == "hello"
    allowed.close()
    for origin in (f"http://127.0.0.1:{http_port}", "https://chat.example", "https://chat.example/"):
        sock = await ani.ws(headers={"Origin": origin})
        hello, _, _ = await sock.handshake()
        assert hello["type"] == "hello"
        sock.close()


@pytest.mark.gen_test
async def test_cross_site_form_posts_are_refused_curl_is_not(api, http_port):
    for hdrs in ({"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
                 {"Sec-Fetch-Site": "cross-site"},
                 {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1"},
                 {"Origin": "http://evil.example"},
                 {"Origin": "http://["}):
        resp = await form_join(api, "Ani", "csrf", headers=hdrs)
        assert_error(resp, 403, "forbidden")
        assert "Set-Cookie" not in resp.headers
    same = await form_join(api, "Ani", "csrf", headers={"Origin": f"http://127.0.0.1:{http_port}"})
    assert same.status == 303
    fetch_same = await form_join(api, "Ani", "csrf", headers={"Sec-Fetch-Site": "same-origin"})
    assert fetch_same.status == 303
    curl = await form_join(api, "Ani", "csrf", headers=JSON_ACCEPT)  # curl: no Origin
    assert curl.status == 200 and "token" in curl.json and "Set-Cookie" not in curl.headers

    # A cross-site form that rides the victim's cookie cannot post either.
    cookie = session_cookie(same)
    forged = await api.request("POST", room_url("csrf", "/messages"), form={"text": "dari situs lain"},
                               headers={"Cookie": cookie, "Sec-Fetch-Site": "cross-site",
                                        "Origin": "http://evil.example"})
    assert_error(forged, 403, "forbidden")
    mine = await api.request("POST", room_url("csrf", "/messages"), form={"text": "dari sini"},
                             headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{http_port}"})
    assert mine.status == 303


# -- no input gives a 500 ----------------------------------------------------------------------------------


def header_value(raw: str) -> str:
    """``raw`` as a header can carry it: UTF-8 bytes, minus what would end the header line."""
    data = raw[:200].encode("utf-8", "surrogatepass")
    return data.decode("latin-1").replace("\r", "").replace("\n", "").replace("\x00", "")


NASTY = ["", " ", "\x00", "%00", "%ff", "%", "%zz", "²", "-1", "1e999", "nan", "inf", "../..", "%2F", "a/b",
         "<script>alert(1)</script>", "日本語", "\u202e", "\ud800", "x" * 5000, "0" * 30, "[]", "{}", "null"]


@pytest.mark.gen_test(timeout=60)
async def test_no_input_gives_a_500(api):
    user = await api.join("Ani", "sweep")
    joined = await form_join(api, "Sari", "sweep")
    cookie = session_cookie(joined)
    auth_sets = [{"Authorization": f"Bearer {user.token}"}, {"Cookie": cookie}, {}]
    seen = set()

    async def check(method: str, path: str, headers: dict[str, str] | None = None, **kw) -> None:
        for auth in auth_sets:
            resp = await api.request(method, path, headers={**auth, **(headers or {})}, **kw)
            assert resp.status < 500, (method, path, headers, kw, resp.status, resp.body[:300])
            seen.add(resp.status)

    async def check_ws(path: str, headers: dict[str, str] | None = None) -> None:
        """A handshake either opens (then it says hello) or is refused with a 4xx."""
        for auth in auth_sets:
            url = api.base_url.replace("http", "ws", 1) + path
            try:
                conn = await websocket_connect(HTTPRequest(url, headers={**auth, **(headers or {})}))
            except HTTPClientError as exc:
                assert exc.code < 500, (path, headers, exc.code, exc.response and exc.response.body)
                seen.add(exc.code)
                continue
            hello = json.loads(await conn.read_message())
            assert hello["type"] == "hello"
            conn.close()

    from urllib.parse import quote

    for raw in NASTY:
        q = quote(raw.encode("utf-8", "surrogatepass"), safe="") if raw not in ("%00", "%ff", "%", "%zz") else raw
        room = "/rooms/" + (q or "x")
        await check("GET", "/?room=" + q)
        await check("GET", room)
        await check("GET", room + "?before=" + q)
        for arg in ("after", "before", "limit", "wait", "epoch"):
            await check("GET", "/rooms/sweep/messages?after=0&wait=0&" + arg + "=" + q)
        await check("GET", room + "/messages?after=0&wait=0")
        await check("GET", room + "/users")
        await check_ws(room + "/ws")
        await check_ws("/rooms/sweep/ws?after=" + q)
        await check_ws("/rooms/sweep/ws?epoch=" + q, headers={"Origin": header_value(raw)})
        await check("POST", "/join", body="name=" + q + "&room=" + q,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        await check("POST", "/join", body="name=Ani&room=" + q, headers={"Origin": header_value(raw)})
        await check("POST", room + "/messages", body="text=" + q,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        await check("POST", room + "/leave", body="")
        for value in (raw, [raw], {"x": raw}, 1e308, -1, True, None):
            body = json.dumps({"name": value, "room": value, "text": value, "client_id": value})
            await check("POST", "/join", body=body, headers={"Content-Type": "application/json"})
            await check("POST", "/rooms/sweep/messages", body=body,
                        headers={"Content-Type": "application/json", "Idempotency-Key": "k"})
        await check("GET", "/rooms/sweep/messages?after=0&wait=0",
                    headers={"Authorization": "Bearer " + header_value(raw)})
        await check("GET", "/rooms/sweep/messages?after=0&wait=0", headers={"Cookie": "obrolan_session=" + q})
    for body in (b"\xff" * 100, b"--x\r\nContent-Disposition: form-data\r\n\r\n", b"a=%ff&b=\x00"):
        await check("POST", "/rooms/sweep/messages", body=body,
                    headers={"Content-Type": "multipart/form-data; boundary=x"})
        await check("POST", "/join", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert {400, 401, 404} <= seen


@pytest.mark.settings(rate_limit=0)
@pytest.mark.gen_test
async def test_websocket_client_frames_never_break_the_server(api):
    ani = await api.join("Ani", "ws-sweep")
    a = await ani.ws()
    await a.handshake()
    for raw in NASTY:
        if raw == "\ud800":
            continue  # not encodable as UTF-8: no client can send it in a text frame
        for frame in (raw, json.dumps({"type": "message", "text": raw}), json.dumps({"type": raw}),
                      json.dumps({"type": "typing", "text": raw})):
            await a.send(frame)
    await a.send({"type": "message", "text": "akhir"})
    await a.recv_until(lambda f: f.get("type") == "message" and f.get("text") == "akhir")
    assert await ani.users() == ["Ani"]
    a.close()
    # and the page still renders
    page = await api.request("GET", room_url("ws-sweep"), token=ani.token)
    assert page.status == 200


@pytest.mark.gen_test
async def test_websocket_handshake_without_session_is_401(api):
    resp = await api.request("GET", room_url("x", "/ws"), headers=WS_UPGRADE)
    assert_error(resp, 401, "unauthorized")
    user = await api.join("Ani", "x")
    events = await user.poll(after=0, wait=0)
    assert events.status == 200 and is_event("join", "Ani")(events.json["events"][0])
