#!/usr/bin/env bash
# The app's commands (`flask --app shop ...`) with the settings `make run` uses on this machine:
# its generated SECRET_KEY (kept outside git) and SHOP_ENV=development, unless already set.
#   scripts/flask.sh phase status        scripts/flask.sh backfill        scripts/flask.sh verify
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/flask ] || { echo "run 'make run' (or 'make install') first: no .venv here" >&2; exit 1; }
export SHOP_ENV=${SHOP_ENV:-development}
if [ -z "${SECRET_KEY:-}" ]; then
  SECRET_KEY=$(bash scripts/secret-key.sh)
  export SECRET_KEY
fi
exec .venv/bin/flask --app shop "$@"
