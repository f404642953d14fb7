"""scripts/install-system-packages.sh (run by scripts/test.sh) installs nginx and redis-server so that
no service starts: the packages' own start (through policy-rc.d, as Debian's maintainer scripts ask)
is refused while apt runs, and the policy the machine had is back afterwards.

apt-get, sudo and systemctl are stand-ins on PATH that record what they were asked; the policy file
is a temporary one (``POLICY_RC_D``), so the machine is not touched."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.servers import ROOT

SCRIPT = ROOT / "scripts" / "install-system-packages.sh"
# What a package's postinst does to start its service: invoke-rc.d asks policy-rc.d first
# (exit 101: "action forbidden by policy"), and starts it only when allowed.
FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$RECORD"
[ "$1" = update ] && exit 0
for package in "$@"; do
  case $package in
    nginx|redis-server)
      if [ -x "$POLICY_RC_D" ]; then "$POLICY_RC_D" "$package" start; status=$?; else status=0; fi
      if [ "$status" = 101 ]; then echo "$package: start refused" >> "$RECORD"
      else echo "$package: STARTED" >> "$RECORD"; fi ;;
  esac
done
"""
FAKE_SUDO = '#!/bin/sh\nexec "$@"\n'
FAKE_SYSTEMCTL = '#!/bin/sh\necho "systemctl $*" >> "$RECORD"\n'


def run_script(tmp_path: Path, *packages: str, apt_fails: bool = False
               ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    apt_get = FAKE_APT_GET + ("exit 100\n" if apt_fails else "")
    for name, text in (("apt-get", apt_get), ("sudo", FAKE_SUDO), ("systemctl", FAKE_SYSTEMCTL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    record = tmp_path / "record.txt"
    record.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record),
           "POLICY_RC_D": str(tmp_path / "policy-rc.d")}
    done = subprocess.run(["bash", str(SCRIPT), *packages], env=env, capture_output=True, text=True, timeout=60)
    return done, record.read_text().splitlines()


@pytest.mark.parametrize("policy_before", [None, "#!/bin/sh\nexit 0\n"], ids=["no policy", "a policy of its own"])
def test_nginx_and_redis_are_installed_with_no_service_started(tmp_path: Path, policy_before: str | None):
    policy = tmp_path / "policy-rc.d"
    if policy_before is not None:
        policy.write_text(policy_before)
        policy.chmod(0o755)
    done, record = run_script(tmp_path, "nginx", "redis-server")
    assert done.returncode == 0, done.stderr
    assert "apt-get update -q" in record and "apt-get install -y -q nginx redis-server" in record, record
    assert "nginx: start refused" in record and "redis-server: start refused" in record, record
    assert not any("STARTED" in line for line in record), record
    assert "nginx redis-server" in done.stdout  # it says what it installs
    # the machine's own policy is back as it was (or there is none again)
    if policy_before is None:
        assert not policy.exists()
    else:
        assert policy.read_text() == policy_before and os.access(policy, os.X_OK)


def test_the_policy_is_put_back_when_apt_fails(tmp_path: Path):
    done, record = run_script(tmp_path, "nginx", apt_fails=True)
    assert done.returncode != 0 and "nginx: start refused" in record
    assert not (tmp_path / "policy-rc.d").exists()


def test_nothing_to_install_touches_nothing(tmp_path: Path):
    done, record = run_script(tmp_path)  # scripts/test.sh installs all four first
    if done.stdout:
        pytest.skip(f"this machine lacks some of them: {done.stdout.strip()}")
    assert done.returncode == 0 and record == []
    assert not (tmp_path / "policy-rc.d").exists()
