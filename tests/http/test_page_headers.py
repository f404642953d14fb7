"""What every answer's headers promise: a strict Content-Security-Policy and no framing on every
page (and every other answer), pages that need nothing inline, ``Allow`` on every 405, and
``GET /join`` sent to the join page."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from handlers.base import CONTENT_SECURITY_POLICY
from tests.chatclient import Api, Response, form_join, room_url, session_cookie

HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_locked_down(resp: Response) -> None:
    """The headers every answer carries: no inline script or style, nothing from elsewhere, no framing."""
    policy = directives(resp.headers.get("Content-Security-Policy", ""))
    assert policy.get("default-src") == ["'none'"], policy
    assert policy.get("script-src") == ["'self'"] and policy.get("style-src") == ["'self'"], policy
    assert policy.get("frame-ancestors") == ["'none'"], policy
    assert policy.get("base-uri") == ["'none'"] and policy.get("form-action") == ["'self'"], policy
    assert not any(v in ("'unsafe-inline'", "'unsafe-eval'", "data:", "*") for vs in policy.values() for v in vs)
    assert resp.headers.get("X-Frame-Options") == "DENY"


class Inline(HTMLParser):
    """What a page would need ``'unsafe-inline'`` for, and what it loads."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.loads: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.inline += [f"<{tag} {k}=...>" for k in named if k == "style" or k.startswith("on")]
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script":
            self._in_script = "src" not in named
            if named.get("src"):
                self.loads.append(str(named["src"]))
        if tag == "link" and named.get("href"):
            self.loads.append(str(named["href"]))
        if tag in ("a", "form") and str(named.get("href") or named.get("action") or "").startswith("javascript:"):
            self.inline.append(f"<{tag} javascript:>")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("<script> with a body")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def assert_nothing_inline(resp: Response) -> list[str]:
    parser = Inline()
    parser.feed(resp.body.decode())
    assert parser.inline == [], parser.inline
    assert all(url.startswith("/static/") for url in parser.loads), parser.loads  # the page's own files only
    return parser.loads


@pytest.mark.gen_test
async def test_every_page_and_answer_has_the_policy_and_needs_nothing_inline(api: Api):
    join_page = await api.request("GET", "/?room=dapur", headers=HTML)
    assert join_page.status == 200
    joined = await form_join(api, "Budi", "dapur")
    assert joined.status == 303
    cookie = {"Cookie": session_cookie(joined), **HTML}
    room_page = await api.request("GET", room_url("dapur"), headers=cookie)
    assert room_page.status == 200 and b'id="composer"' in room_page.body
    form_error = await api.request("POST", "/join", form={"name": "", "room": "dapur"}, headers=HTML)
    assert form_error.status == 400 and b'id="name-error"' in form_error.body
    not_found = await api.request("GET", "/nowhere", headers=HTML)
    assert not_found.status == 404 and not_found.headers["Content-Type"].startswith("text/html")
    for page in (join_page, room_page, form_error, not_found):
        assert_locked_down(page)
        loads = assert_nothing_inline(page)
        assert any(url.startswith("/static/chat.css") for url in loads)
    room_scripts = assert_nothing_inline(room_page)
    assert any(url.startswith("/static/js/app.js") for url in room_scripts)  # the client still loads
    # The API's answers carry the same headers (a JSON answer opened in a tab is a page too).
    user = await api.join("Ani", "dapur")
    for resp in (await api.request("GET", "/rooms"), await api.request("GET", "/healthz"),
                 await user.poll(wait=0), await api.request("GET", "/nowhere", headers=JSON)):
        assert_locked_down(resp)
    assert CONTENT_SECURITY_POLICY == join_page.headers["Content-Security-Policy"]


@pytest.mark.gen_test
async def test_the_favicon_and_the_page_files_are_served_from_static(api: Api):
    page = await api.request("GET", "/", headers=HTML)
    for url in assert_nothing_inline(page):
        resp = await api.request("GET", url)
        assert resp.status == 200, url


# -- 405 and GET /join ---------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_every_405_says_which_methods_the_path_answers(api: Api):
    user = await api.join("Ani", "x")
    cases = [
        ("DELETE", "/rooms", "GET"),
        ("PUT", "/join", "GET, POST"),
        ("DELETE", "/join", "GET, POST"),
        ("POST", room_url("x", "/users"), "GET"),
        ("GET", room_url("x", "/leave"), "POST"),
        ("PUT", room_url("x", "/messages"), "GET, POST"),
        ("POST", "/", "GET"),
        ("POST", "/healthz", "GET"),
        ("PATCH", room_url("x"), "GET"),
    ]
    for method, path, allow in cases:
        body = "{}" if method in ("POST", "PUT", "PATCH") else None
        resp = await api.request(method, path, token=user.token, body=body, headers=JSON)
        assert resp.status == 405, (method, path, resp.status, resp.body)
        assert resp.json["error"] == "method_not_allowed"
        assert resp.headers.get("Allow") == allow, (method, path, resp.headers.get("Allow"))
        # the methods Allow names are answered (not with 405)
        for answered in allow.split(", "):
            again = await api.request(answered, path, token=user.token, headers=JSON,
                                      body="{}" if answered == "POST" else None)
            assert again.status != 405, (answered, path)
    # a browser gets the error page, with the same header
    page = await api.request("DELETE", "/rooms", headers=HTML)
    assert page.status == 405 and page.headers["Allow"] == "GET"
    assert page.headers["Content-Type"].startswith("text/html")


@pytest.mark.gen_test
async def test_get_join_sends_the_browser_to_the_join_page(api: Api):
    resp = await api.request("GET", "/join?room=Proyek%20PBO", headers=HTML)
    assert resp.status == 303 and resp.headers["Location"] == "/?room=Proyek%20PBO"
    plain = await api.request("GET", "/join", headers=JSON)
    assert plain.status == 303 and plain.headers["Location"] == "/"
    followed = await api.request("GET", "/join?room=dapur", headers=HTML, follow_redirects=True)
    assert followed.status == 200 and b'action="/join"' in followed.body and b'value="dapur"' in followed.body
