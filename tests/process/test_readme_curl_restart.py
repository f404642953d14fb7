"""README's curl session while the server stops and starts again: the follow loop waits between
tries (no flood of errors, no traceback) and carries on from its cursor once the server is back."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.readme import readme_curl_block
from tests.servers import ChatProcess

STEP_TIMEOUT_S = 20.0
RETRY_PAUSE_S = 2  # the README's `sleep 2`


def join_and_say(base_url: str, name: str, text: str) -> dict:
    """Join the README's room and post ``text`` (as another curl user would); the stored event."""
    def call(path: str, body: dict, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(base_url + path, data=json.dumps(body).encode(), headers=headers)
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.load(resp)
    token = call("/join", {"name": name, "room": "Proyek PBO"})["token"]
    return call("/rooms/Proyek%20PBO/messages", {"text": text}, token)


class Lines:
    """A subprocess stream read line by line, waited on with a bound."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.seen: list[str] = []

    async def until(self, predicate, what: str) -> str:
        async def _read() -> str:
            while True:
                raw = await self.stream.readline()
                assert raw, f"the script ended before {what}: {self.seen[-20:]}"
                line = raw.decode().rstrip("\n")
                self.seen.append(line)
                if predicate(line):
                    return line
        return await asyncio.wait_for(_read(), STEP_TIMEOUT_S)


@pytest.mark.gen_test(timeout=4 * STEP_TIMEOUT_S)
async def test_the_follow_loop_waits_for_the_server_and_resumes(tmp_path: Path):
    server = ChatProcess(tmp_path / "data", "--store=sqlite", "--cookie-secret=readme-test",
                         log_path=tmp_path / "server.log")
    await server.started()
    # As written (`while true`), only a shorter wait so the loop comes round often.
    script = readme_curl_block(server.url).replace("wait=25", "wait=1")
    proc = await asyncio.create_subprocess_exec("bash", "-eo", "pipefail", "-c", script,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        posted = json.loads(await out.until(lambda line: '"halo semua"' in line, "the post"))
        await out.until(lambda line: '"cursor"' in line, "the first poll answer")

        await server.stopped()
        stopped_at = time.monotonic()
        await err.until(lambda line: line.startswith("curl: ("), "curl's error for the stopped server")
        failure = err.seen[-1]
        await server.started()  # same port, same history (SQLite), same cookie secret
        back_at = time.monotonic()

        # Someone speaks on the restarted server: the loop, back on its own, shows it, right after
        # the post it had (no gap, nothing again).
        ani = await asyncio.to_thread(join_and_say, server.url, "Ani", "sudah kembali")
        resumed = json.loads(await out.until(lambda line: "sudah kembali" in line, "the message after the restart"))
        assert [e.get("text") for e in resumed["events"] if e["type"] == "message"] == ["sudah kembali"]
        assert resumed["events"][0]["id"] == posted["id"] + 1 and resumed["truncated"] is False
        assert ani["user"] == "Ani"
        failures = [line for line in err.seen if line.startswith("curl: (")]
        # one try every RETRY_PAUSE_S while the server was away, not hundreds
        assert len(failures) <= 2 + (back_at - stopped_at) / RETRY_PAUSE_S, failures
        assert re.search(r"curl: \((7|52|56)\)", failure), failure  # could not connect / no answer
        assert not any("Traceback" in line for line in err.seen), err.seen
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await server.stopped()
