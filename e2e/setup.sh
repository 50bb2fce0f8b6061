#!/usr/bin/env bash
# Installs what the browser end-to-end tests and the API fuzzing need:
# Debian's Chromium (Playwright's own browser download needs a CDN we do not
# use), the Playwright, pytest and schemathesis Python packages, and axe-core
# from npm (e2e/package.json, pinned by e2e/package-lock.json).
# Idempotent: runs in seconds when everything is there.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt=()
command -v chromium >/dev/null 2>&1 || apt+=(chromium)
command -v npm >/dev/null 2>&1 || apt+=(npm)
python3 -m pip --version >/dev/null 2>&1 || apt+=(python3-pip)
if [ "${#apt[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt[@]}" >/dev/null
fi

# Pinned versions (requirements.txt); pip does nothing when they are there.
if ! python3 -c "import playwright, pytest, schemathesis" 2>/dev/null; then
  # Debian's own Python refuses pip outside a virtual environment (PEP 668);
  # this machine exists to run the tests, so install beside the system's.
  python3 -m pip install -q --disable-pip-version-check -r requirements.txt \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages -r requirements.txt
fi

if [ ! -f node_modules/axe-core/axe.min.js ]; then
  npm ci --silent --no-audit --no-fund
fi

echo "e2e setup: $(chromium --version 2>/dev/null | head -n1), playwright $(python3 -c 'import importlib.metadata as m; print(m.version("playwright"))'), schemathesis $(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))'), axe-core $(node -p 'require("./node_modules/axe-core/package.json").version')"
