#!/usr/bin/env bash
# Installs the browser the dashboard's end-to-end test drives: Debian's Chromium at
# /usr/bin/chromium (playwright-core launches it; no browser download from Playwright's CDN).
set -euo pipefail
BROWSER=/usr/bin/chromium
[ -x "$BROWSER" ] && exit 0
echo "browser: $BROWSER missing; installing Debian's chromium package" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "browser: not root, cannot install it (hint: sudo apt-get install chromium)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
if [ ! -x "$BROWSER" ]; then
  echo "browser: the chromium package installed no $BROWSER (hint: check apt-get's output: apt-get install chromium)" >&2
  exit 1
fi
echo "browser: $("$BROWSER" --version 2>/dev/null || echo chromium) installed" >&2
