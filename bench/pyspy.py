"""Sample a server with py-spy while a scenario runs, and summarise where its time goes.

``py-spy`` (``pip install py-spy``) records collapsed stacks ("raw" format: one line per
distinct stack, frames separated by ``;``, then the sample count).  The summary gives
each function's share of all samples as the innermost frame (self) and anywhere on
the stack (total), which is enough to see the cost per delivery split by layer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def available() -> bool:
    return shutil.which("py-spy") is not None


def start(pid: int, seconds: float, out: Path, rate_hz: int = 250, idle: bool = False,
          gil: bool = False) -> subprocess.Popen[bytes]:
    """``gil``: sample only the thread holding the GIL, i.e. Python's own CPU time (without it, a
    thread blocked in ``epoll_wait`` or ``fsync`` counts as busy)."""
    cmd = ["py-spy", "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
           "--rate", str(rate_hz), "--nonblocking", *(["--idle"] if idle else []), *(["--gil"] if gil else []),
           "--format", "raw", "--output", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    parts = Path(path).parts
    return f"{m['func']} ({'/'.join(parts[-2:])})"


def summarise(raw: Path, top: int = 22) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    if not samples:
        return "no samples"
    lines = [f"{samples} samples", "", "self %  function (innermost frame)"]
    lines += [f"{100 * n / samples:6.1f}  {f}" for f, n in own.most_common(top)]
    lines += ["", "total % function (anywhere on the stack)"]
    lines += [f"{100 * n / samples:6.1f}  {f}" for f, n in total.most_common(top)]
    return "\n".join(lines)
