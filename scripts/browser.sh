#!/usr/bin/env bash
# Make Debian's Chromium available for the browser test (Playwright drives it; its own
# browser download cannot work offline). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "browser: $(command -v chromium) ready"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "browser: installing chromium from the OS packages"
  [ -f /tmp/.shop-apt-updated ] || { DEBIAN_FRONTEND=noninteractive apt-get update -qq && touch /tmp/.shop-apt-updated; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  echo "browser: $(command -v chromium) ready"
else
  echo "browser: error: chromium is missing and cannot be installed here (not root with apt)" >&2
  exit 1
fi
