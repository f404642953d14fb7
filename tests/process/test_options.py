"""A real start refused: one line on stderr naming the option, status 2, nothing started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

import settings as table
from tests.servers import ROOT

REFUSAL_TIMEOUT_S = 30.0  # a refused start exits at once; this only bounds a hang on a busy machine
# Root writes to a 0500 folder anyway (CAP_DAC_OVERRIDE): without that capability it cannot.
ROOT_IGNORES_FILE_MODES = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


def run_chat(*args: str, env: dict[str, str] | None = None, wrapper: list[str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OBROLAN_")}
    clean["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([*(wrapper or []), sys.executable, str(ROOT / "chat.py"), *args], cwd=ROOT,
                          env={**clean, **(env or {})}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=REFUSAL_TIMEOUT_S)


def assert_refused(done: subprocess.CompletedProcess[str], flag: str) -> str:
    """Status 2, nothing on stdout, and exactly one line on stderr that names ``flag``."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert flag in lines[0] and lines[0].startswith("obrolan: cannot start: "), lines[0]
    assert (done.returncode, done.stdout) == (2, "")
    return lines[0]


@pytest.mark.parametrize(("arg", "says"), [
    ("--port=abc", "--port must be a whole number from 0 to 65535, not 'abc'"),
    ("--port=74640", "--port must be a whole number from 0 to 65535, not '74640'"),
    ("--store=postgres", "--store must be sqlite, sqlite:PATH or memory, not 'postgres'"),
    ("--redis-url=http://x", "--redis-url must be a Redis URL"),
    ("--address=999.1.1.1", "--address must be an IP address or a host name, not '999.1.1.1'"),
    ("--history-max-age=-5", "--history-max-age must be a number of seconds, 0 or more (0 = no limit), not '-5'"),
    ("--history-max-events=-1", "--history-max-events must be a whole number of events, 0 or more"),
    ("--presence-grace=-2", "--presence-grace must be a number of seconds, 0 or more, not '-2'"),
    ("--buffer-size=0", "--buffer-size must be a whole number of events, 1 or more, not '0'"),
    ("--prot=9000", "--prot is not an option (did you mean --port?)"),
])
def test_a_start_with_a_value_that_cannot_work_says_so_in_one_line(tmp_path, arg, says):
    data_dir = tmp_path / "data"
    line = assert_refused(run_chat(f"--data-dir={data_dir}", arg), arg.partition("=")[0])
    assert says in line
    assert not data_dir.exists()  # refused before anything was created


def test_a_bad_environment_variable_is_named(tmp_path):
    line = assert_refused(run_chat(f"--data-dir={tmp_path}", env={"OBROLAN_PORT": "abc"}), "--port")
    assert "OBROLAN_PORT" in line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_already_in_use_is_one_line(tmp_path, busy_port):
    line = assert_refused(run_chat(f"--data-dir={tmp_path}", "--store=memory", "--address=127.0.0.1",
                                   f"--port={busy_port}"), "--port")
    assert f"{busy_port} is already in use" in line


@pytest.mark.parametrize("store", ["--store=memory", "--store=sqlite"])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path, store):
    afile = tmp_path / "data"
    afile.write_text("not a folder")
    line = assert_refused(run_chat(f"--data-dir={afile}", store, "--port=0"), "--data-dir")
    assert "is a file" in line


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root without setpriv writes anyway")
@pytest.mark.parametrize("args", [["--store=memory"], ["--store=sqlite", "--cookie-secret=s"]],
                         ids=["cookie-secret", "database"])
def test_a_data_dir_that_cannot_be_written_is_one_line(tmp_path, args):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        line = assert_refused(run_chat(f"--data-dir={locked}", *args, "--port=0",
                                       wrapper=ROOT_IGNORES_FILE_MODES), "--data-dir")
    finally:
        locked.chmod(0o700)
    assert "Permission denied" in line
    assert list(locked.iterdir()) == []


def test_help_goes_to_stdout_and_names_the_variables():
    done = run_chat("--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == table.help_text()
    assert run_chat("-h").stdout == done.stdout
