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
mypy  # the files and the rules per package are in pyproject.toml ([tool.mypy])
# The browser tests run in their own invocation (Playwright holds an event loop for the rest of a
# run); the main suite runs last so its summary is the final line.
browser=0
python -m pytest -m browser "$@" || browser=$?
main=0
python -m pytest -m "not browser" "$@" || main=$?
# 5 = no tests collected in that invocation (e.g. a -k filter): not a failure by itself.
for status in "$browser" "$main"; do
  [ "$status" = 0 ] || [ "$status" = 5 ] || exit "$status"
done
[ "$browser" = 0 ] || [ "$main" = 0 ] || { echo "no tests ran" >&2; exit 5; }
