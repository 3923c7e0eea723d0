#!/usr/bin/env bash
# wrk, the HTTP load generator of bench/http_load.py, from the OS packages. Idempotent.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "bench: installing wrk from the OS packages"
  [ -f /tmp/.shop-apt-updated ] || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch /tmp/.shop-apt-updated; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
else
  echo "bench: error: wrk is missing and cannot be installed here (not root with apt)" >&2
  exit 1
fi
