"""What gradual exposure costs a request (issue 22), measured side by side in one run.

1. Per read, in process, interleaved round after round so noise hits every case alike: a
   product read as a request makes it (one draw per request, the request's DynamoDB budget) in
   phase 2, and in phase 3 comparing 10% or 100% of requests, inline or in shadow, against
   MySQL alone and against the physical floor of a dual read (two bare threads, one store on
   each, nothing compared). Shadow's request-path cost is the target (<= 1.05x MySQL alone at
   p50); its comparisons still run, on the shadow pool, competing for the same two cores.
2. Requests per second of the storefront under wrk (gunicorn, 2 workers x 4 threads) in the
   same scenarios, round after round; target: phase 3 at 10% >= 0.9x phase 2.

--busy keeps another core spinning for the whole run (this machine has two).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from common import PREFIX, interleaved, make_app, pct, seed_products
from http_load import load_side_by_side
from peers import _cpu_seconds, busy_core

ROOT = Path(__file__).resolve().parent.parent
PHASE3 = "READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"
PHASE2 = "READ_MYSQL,WRITE_MYSQL,WRITE_DDB"
FOUND: dict = {}  # what part 1 measured that part 2 explains itself with
SCENARIOS = [  # name, flags, compare percent, mode
    ("phase 2 (dual write, read MySQL)", PHASE2, 100, "inline"),
    ("phase 3, inline, 100% compared", PHASE3, 100, "inline"),
    ("phase 3, inline, 10% compared", PHASE3, 10, "inline"),
    ("phase 3, shadow, 10% compared", PHASE3, 10, "shadow"),
    ("phase 3, shadow, 100% compared", PHASE3, 100, "shadow"),
]


def _jvm_pid() -> int | None:
    """This run's own DynamoDB Local (scripts/bench.sh), by its port."""
    port = os.environ.get("DYNAMODB_ENDPOINT", "").rsplit(":", 1)[-1]
    found = subprocess.run(["pgrep", "-f", f"DynamoDBLocal.jar.*-port {port}"], capture_output=True,
                           text=True).stdout.split()
    return int(found[0]) if found else None


def dynamodb_read_cpu(read, n: int = 300) -> float | None:
    """CPU seconds one DynamoDB read costs this machine: this process (boto3) and the JVM."""
    jvm = _jvm_pid()
    if jvm is None:
        return None
    before = time.process_time() + _cpu_seconds(jvm)
    for _ in range(n):
        read()
    return (time.process_time() + _cpu_seconds(jvm) - before) / n


def per_read(args, mode: str) -> None:
    from shop import create_app
    from shop.aspects import budget, exposure
    from shop.repositories.mysql import ProductRepository

    app = make_app()
    base = app.extensions["shop"].settings
    _, _, (product,) = seed_products(app)
    pid = product.id
    apps = {name: create_app(replace(base, shop_flags=flags, shop_flags_pinned=True, compare_percent=percent,
                                     compare_mode=how))
            for name, flags, percent, how in SCENARIOS}
    mysql_repo = app.extensions["shop"].repos.products
    mysql_get = ProductRepository.__dict__["get_by_id"].__wrapped__
    from shop import Repositories
    ddb_repo = Repositories.dynamodb(app.extensions["shop"].dynamo).products

    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
    sampled_out = NonRecordingSpan(SpanContext(trace_id=1, span_id=1, is_remote=False, trace_flags=TraceFlags(0)))

    def as_a_request(repo, traced=True):
        """As a request makes it: one draw, a DynamoDB budget; inside a trace (its spans recorded)
        or inside a request tracing sampled out (none of ours recorded: most requests in production)."""
        def read():
            reader, spent = exposure.begin(lambda: None), budget.begin(base.dual_read_timeout_ms / 1000,
                                                                       base.dual_write_timeout_ms / 1000)
            try:
                if traced:
                    return repo.get_by_id(pid)
                with trace.use_span(sampled_out):
                    return repo.get_by_id(pid)
            finally:
                budget.end(spent)
                exposure.end(reader)
        return read

    bare = ThreadPoolExecutor(max_workers=1)

    def floor():
        future = bare.submit(ddb_repo.get_by_id, pid)
        mysql_get(mysql_repo, pid)
        return future.result()

    cases = {"MySQL alone (unwrapped)": lambda: mysql_get(mysql_repo, pid),
             "DynamoDB alone": lambda: ddb_repo.get_by_id(pid),
             "floor: two bare threads, DynamoDB on one": floor,
             **{name: as_a_request(a.extensions["shop"].repos.products) for name, a in apps.items()},
             **{f"{name}, sampled out": as_a_request(a.extensions["shop"].repos.products, traced=False)
                for name, a in apps.items() if "inline, 100%" not in name}}
    samples = interleaved(cases, args.iterations, shuffle=True)
    for a in apps.values():
        a.extensions["shop"].runtime.shadow.drain(30)
    mysql = statistics.median(samples["MySQL alone (unwrapped)"])
    inline_all = statistics.median(samples["phase 3, inline, 100% compared"])
    floor_p50 = statistics.median(samples["floor: two bare threads, DynamoDB on one"])
    print(f"\n## one product read per request ({mode}), {args.iterations} interleaved rounds; ratios to MySQL alone")
    print(f"{'case':55} {'p50 µs':>9} {'p90 µs':>9} {'p50 ratio':>10}")
    for name, values in samples.items():
        print(f"{name:55} {statistics.median(values):9.0f} {pct(values, 90):9.0f} {statistics.median(values) / mysql:10.2f}")
    print(f"phase 3 inline 100% against the floor (two bare threads): {inline_all / floor_p50:.2f}x")
    for mode_name in ("shadow, 10%", "shadow, 100%"):
        for suffix in ("", ", sampled out"):
            phase2 = statistics.median(samples[f"{SCENARIOS[0][0]}{suffix}"])
            shadow = statistics.median(samples[f"phase 3, {mode_name} compared{suffix}"])
            print(f"phase 3 {mode_name}{suffix or ', traced'}: {shadow / mysql:.2f}x MySQL alone,"
                  f" {shadow / phase2:.2f}x phase 2's routed read")
    cpu = dynamodb_read_cpu(lambda: ddb_repo.get_by_id(pid))
    if cpu is not None:
        FOUND["ddb_cpu_s"] = cpu
        print(f"one DynamoDB read costs this machine {cpu * 1e6:.0f} µs of CPU (boto3 and DynamoDB Local's JVM)")
    for name, a in apps.items():
        compared = sum(a.extensions["shop"].runtime.stats.snapshot()["comparisons"].values())
        print(f"  {name}: {compared} comparisons made")
        a.extensions["shop"].runtime.close()
    app.extensions["shop"].runtime.close()


def http(args, mode: str) -> None:
    app = make_app()
    _, _, (product,) = seed_products(app)
    settings = app.extensions["shop"].settings
    app.extensions["shop"].runtime.close()
    path = f"/api/products/{product.id}"
    scenarios = [(name, {"SHOP_FLAGS": flags, "SHOP_FLAGS_PINNED": "true", "SHOP_COMPARE_PERCENT": str(percent),
                         "SHOP_COMPARE_MODE": how}) for name, flags, percent, how in SCENARIOS]
    results = load_side_by_side(settings, scenarios, path, args.rounds, args.seconds, args.connections, rotate=True)
    base = sum(r[0] for r in results[SCENARIOS[0][0]]) / args.rounds
    if "ddb_cpu_s" not in FOUND:
        FOUND["ddb_cpu_s"] = dynamodb_read_cpu(_ddb_read(product.id))
    print(f"\n## HTTP GET {path} ({mode}): wrk -t2 -c{args.connections}, {args.rounds} rounds of {args.seconds}s"
          " per scenario, gunicorn 2 workers x 4 threads; ratio to phase 2")
    print(f"{'scenario':42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/s ratio':>12} {'rounds: low-high':>17}")
    phase2 = results[SCENARIOS[0][0]]
    for name, rows in results.items():
        rps = sum(r[0] for r in rows) / len(rows)
        each = [r[0] / p[0] for r, p in zip(rows, phase2)]  # against phase 2 in the same round
        print(f"{name:42} {rps:9.1f} {sum(r[1] for r in rows) / len(rows):8.2f} {max(r[2] for r in rows):8.2f}"
              f" {rps / base:12.3f} {min(each):8.3f}-{max(each):.3f}")
    cpu = FOUND.get("ddb_cpu_s")
    if cpu:
        # Saturated, the two cores are the limit: a request of phase 2 costs 2/base CPU seconds;
        # one compared adds at least the DynamoDB read it makes.
        cores = os.cpu_count() or 2
        floor = {p: 1 / (1 + p / 100 * cpu * base / cores) for p in (10, 100)}
        print(f"physical floor on this machine ({cores} cores saturated, DynamoDB Local on them, {cpu * 1e6:.0f} µs"
              f" of CPU per DynamoDB read): 10% compared <= {floor[10]:.3f}x phase 2, 100% <= {floor[100]:.3f}x")


def _ddb_read(pid):
    from shop import Repositories, create_app
    from shop.config import Settings
    settings = Settings.from_env(dynamodb_table_prefix=PREFIX, secret_key="bench-secret-key-long-enough-0123456789")
    repo = Repositories.dynamodb(create_app(settings).extensions["shop"].dynamo).products
    return lambda: repo.get_by_id(pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=400)
    parser.add_argument("--busy", action="store_true", help="keep another core busy during the run")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5, help="HTTP rounds; each starts from the next server")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--no-http", action="store_true", help="the per-read table only")
    parser.add_argument("--http-only", action="store_true", help="the HTTP table only")
    args = parser.parse_args()
    mode = "another core busy" if args.busy else "quiet"
    spinner = busy_core() if args.busy else None
    try:
        if not args.http_only:
            per_read(args, mode)
        if not args.no_http:
            http(args, mode)
    finally:
        if spinner is not None:
            spinner.terminate()


if __name__ == "__main__":
    main()
