#!/usr/bin/env bash
# Installs everything the test suite needs and runs all of it.
# Python packages go into ./.venv; Chromium, redis-server and nginx come from apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]'

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

ruff check .
# The browser tests run in their own invocation: Playwright holds an event loop for the rest of a run.
python -m pytest -m "not browser" "$@"
status=0
python -m pytest -m browser "$@" || status=$?
# 5 = no browser tests collected (e.g. a -k filter): not a failure.
[ "$status" = 0 ] || [ "$status" = 5 ] || exit "$status"
