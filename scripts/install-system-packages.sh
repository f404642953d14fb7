#!/usr/bin/env bash
# Installs, with apt, the programs the test suite runs that pip cannot give:
#   chromium      the browser the browser tests drive (Playwright uses it; `playwright install` never runs)
#   redis-server  started by the Redis tests on free ports, one per test module
#   nginx         started by the deployment tests on a free port, with deploy/nginx.conf
#   prometheus    started by the metrics test on a free port, with deploy/prometheus.yml; brings promtool,
#                 which checks deploy/prometheus.yml and deploy/alerts.yml
# Usage: scripts/install-system-packages.sh [PACKAGE...]   (default: those of the four that are missing)
#
# Debian's redis-server, nginx and prometheus packages start their service as they install (redis on
# port 6379, nginx on port 80, prometheus on 9090) and enable it at boot.  The tests need none of
# them running (they start their own on free ports), so nothing is started: while apt runs, a
# policy-rc.d (Debian's switch for maintainer scripts, honoured by invoke-rc.d and
# deb-systemd-invoke) refuses every start, and the one that was there before, if any, is put back.
# On a systemd machine the new units are then disabled, so they do not start at boot either.
set -euo pipefail

POLICY_RC_D=${POLICY_RC_D:-/usr/sbin/policy-rc.d}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)
  command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx)
  command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
fi
[ ${#packages[@]} -gt 0 ] || exit 0

backup=""
if [ -e "$POLICY_RC_D" ]; then
  backup=$(mktemp)
  $SUDO cp -p "$POLICY_RC_D" "$backup"
fi
restore_policy() {
  if [ -n "$backup" ]; then $SUDO mv "$backup" "$POLICY_RC_D"; else $SUDO rm -f "$POLICY_RC_D"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# scripts/install-system-packages.sh: no service starts while it installs\nexit 101\n' \
  | $SUDO tee "$POLICY_RC_D" >/dev/null
$SUDO chmod 755 "$POLICY_RC_D"

echo "installing with apt (no service started): ${packages[*]}"
$SUDO apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for package in "${packages[@]}"; do
    case $package in
      nginx|redis-server|prometheus) $SUDO systemctl disable --now "$package" >/dev/null 2>&1 || true ;;
    esac
  done
fi
