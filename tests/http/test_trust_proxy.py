"""``--trust-proxy``: a proxy's X-Forwarded-* headers are believed only when the server was told so,
and the session cookie is ``Secure`` when the request came over https."""

from __future__ import annotations

import logging

import pytest

from tests.chatclient import Api, form_join
from tests.realserver import http_server  # noqa: F401 (a fixture: the HTTPServer options of chat.serve)

PROXIED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"}


def cookie_attributes(set_cookie: str) -> set[str]:
    return {part.strip().split("=", 1)[0].lower() for part in set_cookie.split(";")[1:]}


def session_set_cookie(resp) -> str:
    [header] = [h for h in resp.headers.get_list("Set-Cookie") if h.startswith("obrolan_session=")]
    return header


def logged_addresses(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The client address of each request in the access log ("303 POST /join (1.2.3.4) 0.52ms")."""
    return [r.getMessage().split("(")[1].split(")")[0] for r in caplog.records if r.name == "tornado.access"]


@pytest.mark.settings(access_log=True)
@pytest.mark.gen_test
async def test_by_default_anyone_can_send_the_headers_and_nothing_believes_them(api: Api, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    resp = await form_join(api, "Budi", "dapur", headers=PROXIED_HTTPS)
    assert resp.status == 303
    attributes = cookie_attributes(session_set_cookie(resp))
    assert "secure" not in attributes and {"httponly", "samesite"} <= attributes
    assert logged_addresses(caplog) == ["127.0.0.1"]  # not the address the client claims


@pytest.mark.settings(access_log=True, trust_proxy=True)
@pytest.mark.gen_test
async def test_behind_a_trusted_tls_proxy_the_cookie_is_secure_and_the_client_address_is_the_proxys_word(
        api: Api, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    resp = await form_join(api, "Budi", "dapur", headers=PROXIED_HTTPS)
    assert resp.status == 303
    assert "secure" in cookie_attributes(session_set_cookie(resp))
    # the proxy talks plain http to the server, but the browser's request was https
    plain = await form_join(api, "Citra", "dapur", headers={"X-Forwarded-Proto": "http"})
    assert "secure" not in cookie_attributes(session_set_cookie(plain))
    bare = await form_join(api, "Dewi", "dapur")
    assert "secure" not in cookie_attributes(session_set_cookie(bare))
    assert logged_addresses(caplog) == ["203.0.113.7", "127.0.0.1", "127.0.0.1"]
