#!/usr/bin/env bash
# Print this machine's development SECRET_KEY, generating it on first use.
# It lives outside git (the cache directory, mode 600): `make run` works on a fresh machine
# without a published key that anyone could use to forge tokens and cookies.
set -euo pipefail
CACHE_DIR=${SHOP_CACHE_DIR:-$HOME/.cache/shop}
KEY_FILE="$CACHE_DIR/secret_key"
if [ ! -s "$KEY_FILE" ]; then
  mkdir -p "$CACHE_DIR"
  (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$KEY_FILE.tmp.$$")
  mv -n "$KEY_FILE.tmp.$$" "$KEY_FILE" 2>/dev/null || true
  rm -f "$KEY_FILE.tmp.$$"
fi
cat "$KEY_FILE"
