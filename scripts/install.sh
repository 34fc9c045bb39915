#!/usr/bin/env bash
# Installs what exitnode needs on a Debian 12 machine with Node.js 20: the Debian packages of the
# data plane (iproute2, nftables, WireGuard tools and wireguard-go, keepalived for stage-2 failover), of the tests (FRR and BIRD for
# their config parsers, PostgreSQL for the server tests, Chromium for the /docs page and the
# dashboard's browser test, driven by playwright-core without a browser download), then the npm
# dependencies, and Node.js 22, the primary runtime, into /opt (scripts/node22.sh).
# Run as root from the repository. Used by the README's set-up commands and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
packages=(iproute2 nftables wireguard-tools wireguard-go keepalived iputils-ping python3 procps util-linux frr bird2 postgresql chromium fonts-dejavu-core)
need=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== apt-get install ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts packaged daemons on install; exitnode's tests run their own instances only (the
# agent starts one keepalived per candidate gateway itself: the packaged service stays off).
for svc in frr bird postgresql keepalived; do
  if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
if command -v systemctl >/dev/null 2>&1; then systemctl disable keepalived >/dev/null 2>&1 || true; fi
echo "== npm ci"
npm ci --no-audit --no-fund
bash scripts/node22.sh >/dev/null
