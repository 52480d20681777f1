#!/usr/bin/env bash
# Installs the real peers that impl/tests/test_browser.py and impl/tests/test_node_ws.py drive:
# Debian's chromium (headless browser) and Node's `ws` client at the version pinned in
# impl/tests/node/package-lock.json. Idempotent; run as root (or with sudo) on a Debian or
# Ubuntu CI machine before `make test`. Without these, the two test modules skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v chromium >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1 \
    || ! command -v npm >/dev/null 2>&1; then
  as_root apt-get update
  packages=()
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${packages[@]}"
fi

# Exactly the locked versions; nothing is written outside impl/tests/node/node_modules.
npm ci --prefix impl/tests/node --no-audit --no-fund

chromium --version
node --version
node -e "console.log('ws', require('./impl/tests/node/node_modules/ws/package.json').version)"
