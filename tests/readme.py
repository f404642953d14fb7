"""README's curl session, for the tests that run it as written with bash and real curl."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
README_URL = "http://127.0.0.1:8888"


def readme_curl_block(base_url: str) -> str:
    """README's curl session as one terminal runs it, pointed at ``base_url``: the join (from the
    first ```sh block under "## Chat from curl", without the ``curl -N`` stream, which runs until
    stopped), the post (the second block, without the typing notice) and the polling loop."""
    section = README.read_text().split("## Chat from curl", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 3, "README's curl section lost a block"
    join = blocks[0].split("\n# follow the room", 1)[0]
    post = blocks[1].split("\n# say you are typing", 1)[0]
    loop = next(b for b in blocks if "while true; do" in b)
    script = f"{join}\n{post}\n{loop}"
    assert README_URL in script and "curl -N" not in script and "wait=25" in script
    return script.replace(README_URL, base_url)


def follow_loop_start(script: str) -> int:
    """Where the follow loop starts (after the join and the post)."""
    return script.index("CURSOR=0")
