"""README's curl session when the token is refused: the follow loop stops with the server's
error, at once, instead of turning each refusal into a traceback, forever."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.web import create_signed_value

from handlers.base import SESSION_COOKIE, SESSION_MAX_AGE_DAYS
from tests.readme import follow_loop_start, readme_curl_block

LOOP_TIMEOUT_S = 15  # the loop stops at the first refusal; a spinning loop runs until this kills it


async def run_bash(script: str) -> tuple[int | None, str, str]:
    proc = await asyncio.create_subprocess_exec("bash", "-eo", "pipefail", "-c", script,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), LOOP_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        return None, out.decode(), err.decode()
    return proc.returncode, out.decode(), err.decode()


def expired_token(secret: str) -> str:
    """A token the server signed itself, 31 days ago (they last 30)."""
    value = json.dumps(["0" * 32, "Budi"])
    month_ago = time.time() - (SESSION_MAX_AGE_DAYS + 1) * 86400
    return create_signed_value(secret, SESSION_COOKIE, value, clock=lambda: month_ago).decode()


@pytest.mark.parametrize("kind", ["expired", "forged", "empty"])
@pytest.mark.gen_test(timeout=LOOP_TIMEOUT_S + 10)
async def test_the_follow_loop_stops_on_an_expired_or_refused_token(chat_url, settings, kind):
    token = {"expired": expired_token(settings.cookie_secret), "forged": "2|1:0|10:1|x|" + "0" * 64, "empty": ""}[kind]
    script = readme_curl_block(chat_url)  # unchanged: the loop as a reader runs it, `while true`
    cut = follow_loop_start(script)
    script = script[:cut] + f"TOKEN='{token}'  # expired, forged or lost\n" + script[cut:]
    status, out, err = await run_bash(script)
    assert status == 0, (status, out[-2000:], err[-2000:])  # it ended by itself, promptly
    assert "Traceback" not in err, err[-2000:]
    answers = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    posted, refused = answers  # the post (with the real token), then the one refusal, shown
    assert posted["type"] == "message" and posted["text"] == "halo semua"
    assert refused["error"] == "unauthorized"
