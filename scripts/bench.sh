#!/usr/bin/env bash
# `make bench`: every benchmark against a DynamoDB Local of its own, started here in memory and
# stopped at the end, so the figures never depend on what a long day left in the shared one (its
# one heap once ran out in sync_scale.py, after other work's tables). MySQL is the shared server,
# with a database of the benchmarks' own (online_shopping_store_bench).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
DDB_DIR="${SHOP_CACHE_DIR:-$HOME/.cache/shop}/dynamodb-local"
[ -f "$DDB_DIR/DynamoDBLocal.jar" ] || { echo "bench: DynamoDB Local is not cached in $DDB_DIR: run make services" >&2; exit 1; }
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$DDB_DIR" && exec java -Xmx${BENCH_DDB_HEAP:-1g} -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" \
   -jar "$DDB_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -port "$PORT" >/dev/null 2>&1) &
DDB_PID=$!
trap 'kill $DDB_PID 2>/dev/null || true; wait $DDB_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  kill -0 $DDB_PID 2>/dev/null || { echo "bench: DynamoDB Local did not start" >&2; exit 1; }
  sleep 0.25
done
export DYNAMODB_ENDPOINT="http://127.0.0.1:$PORT"
echo "bench: DynamoDB Local of this run on $DYNAMODB_ENDPOINT"
run() { echo; echo "### bench/$*"; $PY bench/"$@"; }
if [ $# -gt 0 ]; then run "$@"; exit; fi
run layer_overhead.py
run peers.py
run peers.py --reads-only --busy
run peers.py --reads-only --ddb-latency-ms 2
run peers.py --reads-only --busy --ddb-latency-ms 2
run gradual.py
run gradual.py --busy
run requests_per_endpoint.py
run catalog_scale.py
run sync_scale.py
run http_load.py
run telemetry_memory.py
