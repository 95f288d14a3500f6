#!/usr/bin/env bash
# Installs what the data-plane benchmark needs from Debian: wrk (HTTP/1.1 load generator), h2load
# (nghttp2-client: the gRPC rows' load generator), nginx (backends and reference proxies) with its
# stream module (libnginx-mod-stream: the L4 reference) and taskset (util-linux). Idempotent: does
# nothing when all exist.
set -euo pipefail

# Debian builds nginx's stream module as a dynamic module; other builds may have it built in.
has_nginx_stream() {
  local nginx
  nginx=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
  [ -x "$nginx" ] || return 1
  for dir in /usr/lib/nginx/modules /usr/lib64/nginx/modules /usr/share/nginx/modules; do
    [ -e "$dir/ngx_stream_module.so" ] && return 0
  done
  "$nginx" -V 2>&1 | grep -Eq -- '--with-stream( |$)'
}

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
has_nginx_stream || missing+=(libnginx-mod-stream)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)

if [ ${#missing[@]} -eq 0 ]; then
  echo "bench: wrk, h2load, nginx (with its stream module) and taskset are installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "bench: missing ${missing[*]}; installing them needs root." >&2
  echo "hint: run 'sudo apt-get update && sudo apt-get install -y ${missing[*]}', then 'npm run bench' again" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bench: missing ${missing[*]} and there is no apt-get here (the script knows Debian/Ubuntu only)." >&2
  echo "hint: install ${missing[*]} with this system's package manager" >&2
  exit 1
fi

# nginx's postinst starts the distribution's nginx on port 80; the benchmark runs its own nginx
# processes, so keep the service from starting (the usual policy-rc.d "deny", removed afterwards).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

echo "bench: installing ${missing[*]} from Debian (apt-get)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bench: installed ${missing[*]}"
