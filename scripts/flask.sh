#!/usr/bin/env bash
# The app's commands (`flask --app shop ...`) with the settings of the server `make run` started
# from this checkout, which it saved in .run/settings.env (shop/runenv.py): the same MySQL
# database, DynamoDB tables, key and migration settings. Precedence, highest first: a variable
# set in this command's environment (with a warning when it differs from the server's), the
# saved file, then SHOP_ENV=development and this machine's generated key, then the app's defaults.
#   scripts/flask.sh phase status        scripts/flask.sh backfill        scripts/flask.sh verify
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONNODEBUGRANGES=1  # the Makefile says why (CPython 3.11: tracebacks and ast.parse on threads)
[ -x .venv/bin/flask ] || { echo "run 'make run' (or 'make install') first: no .venv here" >&2; exit 1; }
SAVED=${SHOP_RUN_SETTINGS:-.run/settings.env}
if [ -f "$SAVED" ]; then
  while IFS= read -r line; do
    case $line in ''|'#'*) continue ;; esac
    name=${line%%=*}
    eval "value=${line#*=}"  # written with shlex.quote by shop/runenv.py
    if [ -z "${!name+x}" ]; then
      export "$name=$value"
    elif [ "${!name}" != "$value" ]; then
      echo "flask.sh: $name comes from your environment, not from the server's settings ($SAVED)" >&2
    fi
  done <"$SAVED"
else
  echo "flask.sh: no settings saved by 'make run' in this checkout ($SAVED): using your environment and the defaults" >&2
fi
export SHOP_ENV=${SHOP_ENV:-development}
if [ -z "${SECRET_KEY:-}" ]; then
  SECRET_KEY=$(bash scripts/secret-key.sh)
  export SECRET_KEY
fi
exec .venv/bin/flask --app shop "$@"
