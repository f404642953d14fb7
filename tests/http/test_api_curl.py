"""The README's curl session, run as written with bash and real curl against the test server."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from tests.chatclient import is_event

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8888"


def readme_curl_block() -> str:
    text = README.read_text()
    section = text.split("## Chat from curl", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no ```sh block under '## Chat from curl'"
    return match.group(1)


def json_values(text: str) -> list:
    """Every JSON value printed, in order (curl prints no newline after a body)."""
    decoder = json.JSONDecoder()
    values, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return values
        value, pos = decoder.raw_decode(text, pos)
        values.append(value)


# Between two polls the loop starts curl and python3: more than the 0.3 s test grace period on a busy
# machine, so use a realistic one (the default is 10 s).
@pytest.mark.settings(presence_grace=30.0)
@pytest.mark.gen_test(timeout=40)
async def test_readme_curl_session(api, chat_url):
    script = readme_curl_block()
    # Point it at the test server, and bound the follow loop: three polls, the last one short.
    assert README_URL in script and "while true; do" in script and "wait=25" in script
    script = script.replace(README_URL, chat_url)
    script = script.replace("while true; do", "for _round in 1 2 3; do").replace("wait=25", "wait=0.5")

    ani = await api.join("Ani", "Proyek PBO")
    a = await ani.ws()
    await a.handshake()
    await a.send({"type": "message", "text": "halo dari browser"})
    mine = await a.recv_until(is_event("message"))

    proc = await asyncio.create_subprocess_exec(
        "bash", "-eo", "pipefail", "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    lines = json_values(out.decode())
    assert len(lines) == 4, out.decode()  # the posted event, then one answer per poll

    posted = lines[0]
    assert (posted["type"], posted["user"], posted["room"], posted["text"]) == (
        "message", "Budi", "Proyek PBO", "halo semua")
    # Ani, on a WebSocket, got it live.
    assert await a.recv_until(is_event("message", "Budi")) == posted

    first, second, third = lines[1:]
    # after=0: everything so far: Ani's join and message, then Budi's join (announced by his
    # first request in the room, the post) before his message
    assert [(e["type"], e["user"], e.get("text")) for e in first["events"]] == [
        ("join", "Ani", None), ("message", "Ani", "halo dari browser"),
        ("join", "Budi", None), ("message", "Budi", "halo semua")]
    assert first["events"][1] == mine and first["events"][3] == posted
    assert first["cursor"] == first["events"][-1]["id"] and first["truncated"] is False
    # then nothing new: empty answers at the timeout, with the same cursor
    assert second["events"] == [] and second["cursor"] == first["cursor"]
    assert third["events"] == [] and third["cursor"] == first["cursor"]
    a.close()


@pytest.mark.gen_test
async def test_api_join_returns_a_token_and_sets_no_cookie(api):
    resp = await api.request("POST", "/join", form={"name": "Budi", "room": "Proyek PBO"},
                             headers={"Accept": "application/json"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert "Set-Cookie" not in resp.headers
    body = resp.json
    assert body["name"] == "Budi" and isinstance(body["token"], str) and body["token"]
    # JSON body works too, and the token is accepted by every room endpoint
    js = await api.request("POST", "/join", json_body={"name": "Citra", "room": "Proyek PBO"})
    assert js.status == 200 and "Set-Cookie" not in js.headers
    token = js.json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.request("GET", "/rooms/Proyek%20PBO/users", headers=headers)).status == 200
    assert (await api.request("GET", "/rooms/Proyek%20PBO/messages?wait=0", headers=headers)).status == 200
    assert (await api.request("GET", "/rooms/Proyek%20PBO", headers=headers)).status == 200  # the page too
    # curl -d text=... (a form body) with a bearer token is an API call: 201 and the event
    form = await api.request("POST", "/rooms/Proyek%20PBO/messages", form={"text": "dari curl -d"}, headers=headers)
    assert form.status == 201 and form.json["text"] == "dari curl -d" and form.json["user"] == "Citra"
    health = await api.request("GET", "/healthz")
    assert health.status == 200
