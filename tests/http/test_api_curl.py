"""The README's curl session, run as written with bash and real curl against the test server."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import pytest

from tests.chatclient import is_event

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8888"


def readme_curl_blocks() -> list[str]:
    """The ```sh blocks under '## Chat from curl': the stream, the sends, the long-poll loop."""
    section = README.read_text().split("## Chat from curl", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 3, "README's curl section: join and stream, then sends, then the polling loop"
    return blocks


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
    stream_block, send_block, poll_block = (b.replace(README_URL, chat_url) for b in readme_curl_blocks())
    # The first block joins, then follows the room with curl -N (for ever): run it with the token
    # printed before the stream, so the other blocks can use it as in a second terminal.
    join, _, follow = stream_block.rpartition("\ncurl -N ")
    assert "TOKEN=$(" in join and "/events?after=0" in follow
    stream_script = f'{join}\necho "$TOKEN"\nexec curl -N {follow}'
    # Bound the follow loop: three polls, the last one short.
    assert "while true; do" in poll_block and "wait=25" in poll_block
    poll_block = poll_block.replace("while true; do", "for _round in 1 2 3; do").replace("wait=25", "wait=0.5")

    ani = await api.join("Ani", "Proyek PBO")
    a = await ani.ws()
    await a.handshake()
    await a.send({"type": "message", "text": "halo dari browser"})
    mine = await a.recv_until(is_event("message"))

    stream = await asyncio.create_subprocess_exec(
        "bash", "-eo", "pipefail", "-c", stream_script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        token = (await asyncio.wait_for(stream.stdout.readline(), 10)).decode().strip()

        async def streamed() -> dict:
            line = await asyncio.wait_for(stream.stdout.readline(), 10)
            assert line, (await stream.stderr.read()).decode()
            return json.loads(line)

        opening = [await streamed() for _ in range(5)]
        # hello; everything so far (Ani's join and message, Budi's join: the stream made him present);
        # who is here
        assert [(i["type"], i.get("user")) for i in opening] == [
            ("hello", "Budi"), ("join", "Ani"), ("message", "Ani"), ("join", "Budi"), ("presence", None)]
        assert opening[2] == mine and opening[4]["users"] == ["Ani", "Budi"]

        sends = await asyncio.create_subprocess_exec(
            "bash", "-eo", "pipefail", "-c", send_block + poll_block, env={**os.environ, "TOKEN": token},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(sends.communicate(), 30)
        finally:
            if sends.returncode is None:
                sends.kill()
                await sends.wait()
        assert sends.returncode == 0, err.decode()
        lines = json_values(out.decode())
        assert len(lines) == 5, out.decode()  # the posted event, the typing answer, one answer per poll

        posted = lines[0]
        assert (posted["type"], posted["user"], posted["room"], posted["text"]) == (
            "message", "Budi", "Proyek PBO", "halo semua")
        assert lines[1] == {"sent": True}
        # curl -N printed it live, and the typing notice; Ani, on a WebSocket, got both too.
        assert await streamed() == posted
        assert await streamed() == {"type": "typing", "user": "Budi"}
        assert await a.recv_until(is_event("message", "Budi")) == posted
        assert await a.recv_until(lambda f: f["type"] == "typing") == {"type": "typing", "user": "Budi"}
    finally:
        if stream.returncode is None:
            stream.kill()
            await stream.wait()

    first, second, third = lines[2:]
    # after=0: everything so far
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
