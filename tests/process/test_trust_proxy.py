"""``--trust-proxy`` on a real ``python chat.py``: off, a client's own X-Forwarded-* headers change
nothing; on, the proxy's word decides the client's address and whether the cookie is ``Secure``;
and behind deploy/nginx.conf a client cannot put words in the proxy's mouth."""

from __future__ import annotations

import http.client
import shutil
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from tests.redis_helpers import Nginx
from tests.servers import ChatProcess, wait_until

FORGED = {"X-Forwarded-Proto": "https", "X-Scheme": "https", "X-Forwarded-For": "203.0.113.7",
          "X-Real-IP": "203.0.113.7"}
LOG_TIMEOUT_S = 10.0


def form_join(base_url: str, name: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    """``POST /join`` as a browser form; the answer (a 303 with the cookie), not followed."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("POST", "/join", body=urlencode({"name": name, "room": "dapur"}),
                 headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def cookie_is_secure(resp: http.client.HTTPResponse) -> bool:
    [cookie] = [c for c in resp.headers.get_all("Set-Cookie") or [] if c.startswith("obrolan_session=")]
    return "secure" in {part.strip().lower() for part in cookie.split(";")[1:]}


def logged_client(server: ChatProcess, name: str) -> str:
    """The client address the access log gave the join of ``name`` (the line is written just
    after the answer: wait for it)."""
    wait_until(lambda: "POST /join" in server.log_tail(100_000), "the access log line", server.proc,
               timeout_s=LOG_TIMEOUT_S)
    lines = [line for line in server.log_tail(100_000).splitlines() if "POST /join" in line]
    assert len(lines) == 1, lines
    return lines[0].split("(")[-1].split(")")[0]


@pytest.fixture
def servers(tmp_path: Path):
    started: list[ChatProcess] = []

    def start(name: str, *args: str) -> ChatProcess:
        server = ChatProcess(tmp_path / name, "--store=memory", "--cookie-secret=proxy-test", "--access-log", *args,
                             log_path=tmp_path / f"{name}.log")
        started.append(server.spawn())
        return server

    yield start
    for server in started:
        server.stop()


def test_off_by_default_and_on_with_the_option(servers):
    plain, trusting = servers("plain"), servers("trusting", "--trust-proxy")
    for server in (plain, trusting):
        server.wait_ready()
    resp = form_join(plain.url, "Budi", FORGED)
    assert resp.status == 303 and not cookie_is_secure(resp)
    assert logged_client(plain, "Budi") == "127.0.0.1"
    resp = form_join(trusting.url, "Budi", FORGED)
    assert resp.status == 303 and cookie_is_secure(resp)
    assert logged_client(trusting, "Budi") == "203.0.113.7"


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="needs nginx")
def test_behind_deploy_nginx_conf_a_client_cannot_forge_the_proxys_headers(servers, tmp_path: Path):
    backend = servers("backend", "--trust-proxy").wait_ready()
    nginx = Nginx(tmp_path, [backend]).start()
    try:
        resp = form_join(nginx.url, "Budi", FORGED)
        # nginx sets X-Forwarded-Proto to its own scheme (http here) and X-Real-IP to the peer
        assert resp.status == 303 and not cookie_is_secure(resp)
        assert logged_client(backend, "Budi") == "127.0.0.1"
    finally:
        nginx.stop()
