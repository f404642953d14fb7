#!/usr/bin/env bash
# Installs everything the test suite needs and runs all of it:
# - into ./.venv, with pip, the project and its test extra (setup.cfg): pytest, pytest-tornado,
#   Playwright (the Python package only: it drives the system's Chromium), schemathesis, redis-py,
#   PyYAML, calmjs.parse, uvloop, ruff, mypy;
# - with apt, only when missing: chromium, redis-server, nginx and prometheus, installed so that no service
#   starts, now or at boot (scripts/install-system-packages.sh says how);
# - with npm (node and npm come with the machine), only when tests/browser/node_modules is missing:
#   `npm ci` in tests/browser/, which installs what tests/browser/package-lock.json pins: axe-core (4.14.1,
#   no dependencies of its own), the accessibility checker tests/browser/test_axe.py loads into the pages.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]'

bash scripts/install-system-packages.sh  # chromium, redis-server, nginx, prometheus: those missing
[ -d tests/browser/node_modules ] || (cd tests/browser && npm ci --no-audit --no-fund)  # axe-core

ruff check .
mypy  # the files and the rules per package are in pyproject.toml ([tool.mypy])
# The browser tests (tests/browser/, marker `browser`) run in their own invocation (Playwright holds
# an event loop for the rest of a run); the other tiers (unit, contract, http, process: see
# docs/architecture.md) run last so their summary is the final line.
browser=0
python -m pytest -m browser "$@" || browser=$?
main=0
python -m pytest -m "not browser" "$@" || main=$?
# 5 = no tests collected in that invocation (e.g. a -k filter): not a failure by itself.
for status in "$browser" "$main"; do
  [ "$status" = 0 ] || [ "$status" = 5 ] || exit "$status"
done
[ "$browser" = 0 ] || [ "$main" = 0 ] || { echo "no tests ran" >&2; exit 5; }
