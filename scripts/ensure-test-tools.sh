#!/usr/bin/env bash
# Installs the system tools the test suite uses, only those missing (Debian packages):
# openssl makes the throwaway certificates of the TLS tests, chromium drives the dashboard's UI,
# iptables/iproute2 run the transparent-capture tests (as root).
set -euo pipefail
# Chromium for the dashboard's browser test (test/e2e/dashboard.test.ts); its own script, so it can
# also be run alone.
bash "$(dirname "$0")/ensure-browser.sh"
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Transparent capture's tests (test/integration/capture-*.test.ts, as root): iptables, ip (iproute2),
# setpriv (util-linux), curl, and the SO_ORIGINAL_DST addon. `npm ci` builds the addon when g++,
# make and python3 are there; when they were not, they are installed here and the addon built.
root_linux=false
if [ "$(id -u)" -eq 0 ] && [ "$(uname -s)" = Linux ]; then root_linux=true; fi
addon="$(dirname "$0")/../native/build/Release/original_dst.node"
if $root_linux; then
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ ! -f "$addon" ]; then
    command -v g++ >/dev/null 2>&1 || missing+=(g++)
    command -v make >/dev/null 2>&1 || missing+=(make)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "test tools: installing ${missing[*]} from Debian's packages" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "test tools: ${missing[*]} missing and not root (hint: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if $root_linux && [ ! -f "$addon" ]; then
  echo "test tools: building the SO_ORIGINAL_DST addon" >&2
  WEFT_REQUIRE_NATIVE=1 node "$(dirname "$0")/build-native.js"
fi
