"""Server-rendered pages and the no-JavaScript path: join form, room page, form posts, escaping."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from tests.chatclient import form_join, is_event, room_url, session_cookie

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class _Collect(HTMLParser):
    """Text and direct ``<li>`` items inside the element with a given id."""

    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "wbr"}

    def __init__(self, element_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.element_id = element_id
        self.depth = 0
        self.text: list[str] = []
        self.values: dict[str, str] = {}
        self.items: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name"):
            self.values[attrs["name"]] = attrs.get("value") or ""
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
            if tag == "li" and self.depth == 2:
                self.items.append([])
        elif attrs.get("id") == self.element_id:
            self.depth = 1

    def handle_endtag(self, tag):
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)
            if self.items and self.depth >= 2:
                self.items[-1].append(data)


def collect(html: bytes, element_id: str) -> _Collect:
    parser = _Collect(element_id)
    parser.feed(html.decode())
    return parser


def page_text(html: bytes, element_id: str) -> str:
    return " ".join(" ".join(collect(html, element_id).text).split())


def list_items(html: bytes, element_id: str) -> list[str]:
    return [" ".join(" ".join(item).split()) for item in collect(html, element_id).items]


def form_values(html: bytes) -> dict[str, str]:
    return collect(html, "-none-").values


async def browser_join(api, name: str, room: str) -> str:
    resp = await form_join(api, name, room)
    assert resp.status == 303, resp.body
    return session_cookie(resp)


@pytest.mark.gen_test
async def test_join_form(api):
    resp = await api.request("GET", "/")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert b"Join Chat" in resp.body
    assert b'action="/join"' in resp.body
    assert form_values(resp.body) == {"name": "", "room": ""}

    pre = await api.request("GET", "/?room=" + quote("Proyek PBO"))
    assert form_values(pre.body)["room"] == "Proyek PBO"
    uni = await api.request("GET", "/?room=" + quote("Ruang Ñandú 日本"))
    assert form_values(uni.body)["room"] == "Ruang Ñandú 日本"
    xss = await api.request("GET", "/?room=" + quote('"><script>alert(1)</script>'))
    assert xss.status == 200
    assert b"<script>alert(1)" not in xss.body
    assert form_values(xss.body)["room"] == '"><script>alert(1)</script>'


@pytest.mark.gen_test
@pytest.mark.parametrize(("name", "room"), [("Budi", "Proyek PBO"), ("Ñandú 日本", "Ruang Ñandú 日本"),
                                            ("Budi", "lobby"), ("Budi", "100% #1 ?x=y&z")])
async def test_form_join_redirects_to_the_room_with_a_cookie(api, name, room):
    resp = await form_join(api, name, room)
    assert resp.status == 303
    assert resp.headers["Location"] == "/rooms/" + quote(room, safe="")
    [cookie_header] = [h for h in resp.headers.get_list("Set-Cookie") if h.startswith("obrolan_session=")]
    assert "httponly" in cookie_header.lower() and "samesite=lax" in cookie_header.lower()
    page = await api.request("GET", resp.headers["Location"], headers={"Cookie": session_cookie(resp)})
    assert page.status == 200
    assert f"Welcome, {name}!" in page_text(page.body, "chat")
    assert room in page_text(page.body, "chat")


@pytest.mark.gen_test
async def test_invalid_form_rerenders_with_error_and_values(api):
    # Each error at its field (name-error, room-error), in words for people (handlers/messages.py).
    cases = [
        ({"name": "n" * 33, "room": "Proyek PBO"}, 400, "name", "This name is too long. Use at most 32 characters."),
        ({"name": "   ", "room": "Proyek PBO"}, 400, "name", "Type the name you want to be seen by."),
        ({"name": "Budi", "room": "r" * 65}, 400, "room", "This room name is too long. Use at most 64 characters."),
        ({"name": "Bu\x07di", "room": "Ruang Ñandú 日本"}, 400, "name", "such as a line break"),
        ({"name": "Budi", "room": "a/b"}, 400, "room", "A room name cannot contain “/”."),
    ]
    for form, status, field, needle in cases:
        resp = await api.request("POST", "/join", form=form)
        assert resp.status == status, (form, resp.body[:200])
        assert resp.headers["Content-Type"].startswith("text/html")
        assert needle in page_text(resp.body, f"{field}-error"), page_text(resp.body, f"{field}-error")
        assert b'id="join-error"' not in resp.body
        assert b"Join Chat" in resp.body
        values = form_values(resp.body)
        assert values["room"] == form["room"] and values["name"] == form["name"]
        assert "Set-Cookie" not in resp.headers


@pytest.mark.gen_test
async def test_room_page_without_session_redirects_to_the_join_form(api):
    for room in ("Proyek PBO", "Ruang Ñandú 日本"):
        resp = await api.request("GET", room_url(room))
        assert resp.status in (302, 303)
        assert resp.headers["Location"] == "/?room=" + quote(room, safe="")
        form = await api.request("GET", resp.headers["Location"])
        assert form_values(form.body)["room"] == room


@pytest.mark.settings(rate_limit=0, presence_grace=30.0)
@pytest.mark.gen_test
async def test_room_page_renders_users_and_the_last_50_events(api):
    citra = await api.join("Citra", "Proyek PBO")
    c = await citra.ws()  # present
    await c.handshake()
    for i in range(60):
        assert (await citra.post(f"pesan-{i:03d}")).status == 201
    cookie = await browser_join(api, "Budi", "Proyek PBO")
    page = await api.request("GET", room_url("Proyek PBO"), headers={"Cookie": cookie})
    assert page.status == 200
    html = page.body.decode()
    assert "Welcome, Budi!" in html
    users = list_items(page.body, "users")  # the page view made Budi present too
    assert len(users) == 2 and "Budi" in users[0] and "Citra" in users[1]
    # Citra's join is id 1, her messages 2..61, Budi's join 62: the last 50 events are
    # pesan-011..pesan-059 and Budi's join.
    assert len(list_items(page.body, "messages")) == 50
    texts = page_text(page.body, "messages")
    assert [i for i in range(60) if f"pesan-{i:03d}" in texts] == list(range(11, 60))
    assert "Citra joined" not in texts and "Budi joined" in texts
    c.close()


@pytest.mark.gen_test
async def test_room_page_escapes_names_and_messages(api):
    name = "<script>alert(1)</script>"
    cookie = await browser_join(api, name, "xss")
    text = quote('<img src=x onerror="alert(2)">')
    sent = await api.request("POST", room_url("xss", "/messages"), body="text=" + text,
                             headers={"Cookie": cookie, **FORM})
    assert sent.status == 303
    page = await api.request("GET", room_url("xss"), headers={"Cookie": cookie})
    html = page.body.decode()
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f"Welcome, {name}!" in page_text(page.body, "chat")
    assert '<img src=x onerror="alert(2)">' in page_text(page.body, "messages")


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_no_javascript_form_post_and_errors(api):
    ani = await api.join("Ani", "Ruang Ñandú 日本")
    a = await ani.ws()
    await a.handshake()
    cookie = await browser_join(api, "Budi", "Ruang Ñandú 日本")
    path = room_url("Ruang Ñandú 日本", "/messages")
    resp = await api.request("POST", path, body="text=" + quote("halo dari formulir\nbaris dua"),
                             headers={"Cookie": cookie, **FORM})
    assert resp.status == 303
    assert resp.headers["Location"] == room_url("Ruang Ñandú 日本")
    live = await a.recv_until(is_event("message"))  # the WebSocket user sees it live
    assert (live["user"], live["text"]) == ("Budi", "halo dari formulir\nbaris dua")
    page = await api.request("GET", resp.headers["Location"], headers={"Cookie": cookie})
    assert "halo dari formulir" in page_text(page.body, "messages")
    assert "Ani" in page_text(page.body, "users")

    # a form error re-renders the room page with the error and the text kept
    long_text = "x" * 2001
    bad = await api.request("POST", path, body="text=" + long_text, headers={"Cookie": cookie, **FORM})
    assert bad.status == 400 and bad.headers["Content-Type"].startswith("text/html")
    assert "Welcome, Budi!" in bad.body.decode()
    assert "at most 2000 characters" in page_text(bad.body, "composer-error")
    assert long_text in page_text(bad.body, "composer")
    empty = await api.request("POST", path, body="text=+++", headers={"Cookie": cookie, **FORM})
    assert empty.status == 400 and "The message is empty." in page_text(empty.body, "composer-error")

    # the same session's JSON client gets 201 and the event
    api_post = await api.request("POST", path, json_body={"text": "lewat JSON"},
                                 headers={"Cookie": cookie, "Accept": "application/json"})
    assert api_post.status == 201 and api_post.json["text"] == "lewat JSON"
    a.close()


@pytest.mark.settings(rate_limit=1, rate_burst=1)
@pytest.mark.usefixtures("rate_clock_stopped")
@pytest.mark.gen_test
async def test_form_post_over_the_rate_limit_rerenders_with_429(api):
    cookie = await browser_join(api, "Budi", "pelan")
    path = room_url("pelan", "/messages")
    assert (await api.request("POST", path, body="text=satu", headers={"Cookie": cookie, **FORM})).status == 303
    resp = await api.request("POST", path, body="text=dua", headers={"Cookie": cookie, **FORM})
    assert resp.status == 429 and resp.headers["Retry-After"] == "1"
    assert page_text(resp.body, "composer-error")
    assert "dua" in page_text(resp.body, "composer")


@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test
async def test_rejoining_from_the_same_browser_is_not_a_clash(api):
    ani = await api.join("Ani", "lagi")
    a = await ani.ws()
    await a.handshake()
    cookie = await browser_join(api, "Budi", "lagi")
    poll = await api.request("GET", room_url("lagi", "/messages?wait=0"), headers={"Cookie": cookie})
    assert poll.status == 200  # Budi is present now
    await a.recv_until(is_event("join", "Budi"))
    # The same browser submits the join form again (another tab, or the back button): same session.
    again = await api.request("POST", "/join", form={"name": "Budi", "room": "lagi"}, headers={"Cookie": cookie})
    assert again.status == 303
    cookie2 = session_cookie(again)
    page = await api.request("GET", room_url("lagi"), headers={"Cookie": cookie2})
    assert page.status == 200
    # and it is still the one Budi in the room, able to post
    sent = await api.request("POST", room_url("lagi", "/messages"), body="text=masih+aku",
                             headers={"Cookie": cookie2, **FORM})
    assert sent.status == 303
    got = await a.recv_until(lambda f: f.get("type") in ("message", "join", "leave"))
    assert (got["type"], got["user"], got["text"]) == ("message", "Budi", "masih aku")
    # another browser cannot take the name meanwhile
    other = await form_join(api, "BUDI", "lagi")
    assert other.status == 409
    a.close()
