"""Dual reads and dual writes next to the peers, on the same repository calls, in one run.

Peers (from PyPI, offline): LaunchDarkly's Python SDK migration support (`ldclient.migrations`
Migrator, flag from its TestData source, execution order PARALLEL and SERIAL) and laboratory
(the Python port of GitHub's Scientist). Every variant compares with the same comparator.

Modes: `--busy` keeps a second process spinning on the CPU for the whole run (a loaded
application server); `--ddb-latency-ms N` puts DynamoDB behind reliability/proxy.py, in a
process of its own, adding N ms to every request (a network-distant DynamoDB).
"""
from __future__ import annotations

import argparse
import atexit
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from common import interleaved, make_app, report, seed_products


def _spin() -> None:
    while True:
        pass


def busy_core() -> multiprocessing.Process:
    """A process keeping one core busy until the benchmark ends."""
    spinner = multiprocessing.Process(target=_spin, daemon=True)
    spinner.start()
    return spinner


def distant_dynamodb(latency_ms: float) -> tuple[subprocess.Popen, str]:
    """DynamoDB behind a proxy adding `latency_ms` per request; returns the proxy and its endpoint."""
    target = urlparse(os.environ.get("DYNAMODB_ENDPOINT", "http://127.0.0.1:8000")).port
    root = Path(__file__).resolve().parent.parent
    proxy = subprocess.Popen([sys.executable, "-m", "reliability.proxy", str(target), str(latency_ms)],
                             cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # Registered before the app's own exit handler, so it runs after it (the tables are
    # deleted through the proxy).
    atexit.register(lambda: (proxy.stdin.close(), proxy.wait(timeout=10)))
    return proxy, f"http://127.0.0.1:{proxy.stdout.readline().strip()}"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pid_of(pattern: str) -> int | None:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


def cpu_per_call(calls: dict, n: int = 1000) -> None:
    """CPU each call costs this process, DynamoDB Local's JVM and MariaDB (from /proc): what two
    cores can overlap at best. Skipped where those servers are not local processes."""
    servers = {name: _pid_of(pattern) for name, pattern in (("JVM", "DynamoDBLocal"), ("MariaDB", "mariadbd"))}
    if not all(servers.values()) or not Path("/proc").is_dir():
        return
    print(f"\n## CPU per call, {n} calls each (µs)")
    print(f"{'call':20} {'wall':>7} {'Python':>7} {'JVM':>7} {'MariaDB':>8}")
    for name, fn in calls.items():
        before = [time.perf_counter(), time.process_time()] + [_cpu_seconds(p) for p in servers.values()]
        for _ in range(n):
            fn()
        after = [time.perf_counter(), time.process_time()] + [_cpu_seconds(p) for p in servers.values()]
        wall, python, jvm, maria = ((b - a) / n * 1e6 for a, b in zip(before, after))
        print(f"{name:20} {wall:7.0f} {python:7.0f} {jvm:7.0f} {maria:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--busy", action="store_true", help="keep another core busy during the run")
    parser.add_argument("--ddb-latency-ms", type=float, default=0, help="latency added per DynamoDB request")
    parser.add_argument("--reads-only", action="store_true", help="the dual-read table only")
    args = parser.parse_args()
    overrides = {}
    if args.ddb_latency_ms:
        _, overrides["dynamodb_endpoint"] = distant_dynamodb(args.ddb_latency_ms)
    spinner = busy_core() if args.busy else None
    mode = ", ".join(m for m in ("another core busy" if args.busy else "quiet",
                                 f"DynamoDB +{args.ddb_latency_ms:g} ms per request" if args.ddb_latency_ms else "")
                     if m)

    import laboratory
    from ldclient import Config, Context, LDClient
    from ldclient.integrations.test_data import TestData
    from ldclient.migrations import ExecutionOrder, MigratorBuilder, Stage

    from shop import Repositories
    from shop.aspects import PRESETS, use_flags
    from shop.aspects.compare import diff
    from shop.repositories.mysql import ProductRepository

    app = make_app(**overrides)
    state = app.extensions["shop"]
    _, _, (product,) = seed_products(app)
    pid = product.id
    mysql_repo = state.repos.products
    mysql_get = ProductRepository.__dict__["get_by_id"].__wrapped__
    mysql_set = ProductRepository.__dict__["set_inventory"].__wrapped__
    ddb_repo = Repositories.dynamodb(state.dynamo).products
    same = lambda a, b: not diff(a, b)  # noqa: E731

    td = TestData.data_source()
    td.update(td.flag("migration").variations("off", "dualwrite", "shadow", "live", "rampdown", "complete")
              .variation_for_all(2))  # shadow: read both, old authoritative
    client = LDClient(Config("sdk-key", update_processor_class=td, send_events=False, offline=False,
                             diagnostic_opt_out=True))
    context = Context.create("bench")

    def ld(order):
        return (MigratorBuilder(client).read_execution_order(order)
                .read(lambda _: _ld_ok(mysql_get(mysql_repo, pid)), lambda _: _ld_ok(ddb_repo.get_by_id(pid)), same)
                .write(lambda _: _ld_ok(mysql_set(mysql_repo, pid, 1000)),
                       lambda _: _ld_ok(ddb_repo.set_inventory(pid, 1000)))
                .build())

    def _ld_ok(value):
        from ldclient.migrations import OperationResult  # noqa: F401
        from ldclient.impl.util import Result
        return Result.success(value)

    ld_parallel, ld_serial = ld(ExecutionOrder.PARALLEL), ld(ExecutionOrder.SERIAL)

    class Experiment(laboratory.Experiment):
        def compare(self, control, candidate):
            return same(control.value, candidate.value)

    def lab_read():
        e = Experiment(name="read", raise_on_mismatch=False)
        e.control(mysql_get, args=[mysql_repo, pid])
        e.candidate(ddb_repo.get_by_id, args=[pid])
        return e.conduct()

    def ours_read():
        with use_flags(PRESETS[2].flags):
            return mysql_repo.get_by_id(pid)

    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
    sampled_out = NonRecordingSpan(SpanContext(trace_id=1, span_id=1, is_remote=False, trace_flags=TraceFlags(0)))

    def ours_unsampled():
        """As inside a request that tracing sampled out: no span of ours is recorded."""
        with trace.use_span(sampled_out):
            return ours_read()

    def ours_forced(way):
        def read():
            state.runtime.dual_read_execution = way
            try:
                return ours_read()
            finally:
                state.runtime.dual_read_execution = "auto"
        return read

    def ours_write():
        with use_flags(PRESETS[1].flags):
            return mysql_repo.set_inventory(pid, 1000)

    from concurrent.futures import ThreadPoolExecutor
    bare = ThreadPoolExecutor(max_workers=1)

    def threads_ddb_away():
        """No layer: DynamoDB on a thread, MySQL on the caller's, nothing compared."""
        future = bare.submit(ddb_repo.get_by_id, pid)
        mysql_get(mysql_repo, pid)
        return future.result()

    def threads_mysql_away():
        future = bare.submit(mysql_get, mysql_repo, pid)
        ddb_repo.get_by_id(pid)
        return future.result()

    reads = {
        "MySQL alone (unwrapped)": lambda: mysql_get(mysql_repo, pid),
        "DynamoDB alone": lambda: ddb_repo.get_by_id(pid),
        "shop dual read (chooses per route)": ours_read,
        "  shop, always concurrent": ours_forced("concurrent"),
        "  shop, always inline": ours_forced("inline"),
        "  shop, always MySQL on the pool": ours_forced("mysql-pooled"),
        "  shop, request sampled out (no spans)": ours_unsampled,
        "LaunchDarkly Migrator PARALLEL": lambda: ld_parallel.read("migration", context, Stage.OFF),
        "LaunchDarkly Migrator SERIAL": lambda: ld_serial.read("migration", context, Stage.OFF),
        "laboratory Experiment": lab_read,
        "floor: two bare threads, DynamoDB on one": threads_ddb_away,
        "floor: two bare threads, MySQL on one": threads_mysql_away,
    }
    samples = interleaved(reads, args.iterations, shuffle=True)
    slower = max(statistics.median(samples["MySQL alone (unwrapped)"]), statistics.median(samples["DynamoDB alone"]))
    report(f"dual read of one product ({mode}), {args.iterations} interleaved rounds; "
           "ratio to the slower single store", samples, baseline=slower)
    cpu_per_call({"MySQL read": lambda: mysql_get(mysql_repo, pid), "DynamoDB read": lambda: ddb_repo.get_by_id(pid)})
    pace = state.runtime._paces.get("ProductRepository.get_by_id")
    if pace is not None:
        print("shop's choice at the end, medians (ms): " + ", ".join(
            f"{way} {m * 1000:.2f}" if m is not None else f"{way} unmeasured" for way, m in pace.medians.items()))
    if args.reads_only:
        return _finish(client, state, spinner)

    td.update(td.flag("migration").variations("off", "dualwrite", "shadow", "live", "rampdown", "complete")
              .variation_for_all(1))  # dualwrite: old then new
    writes = {
        "MySQL write (unwrapped)": lambda: mysql_set(mysql_repo, pid, 1000),
        "DynamoDB write": lambda: ddb_repo.set_inventory(pid, 1000),
        "MySQL write + DynamoDB write, sequential": lambda: (mysql_set(mysql_repo, pid, 1000),
                                                             ddb_repo.set_inventory(pid, 1000)),
        "shop dual write": ours_write,
        "LaunchDarkly Migrator write (dualwrite)": lambda: ld_serial.write("migration", context, Stage.OFF),
    }
    samples = interleaved(writes, args.iterations)
    report(f"dual write of one product's inventory, {args.iterations} interleaved rounds; "
           "ratio to MySQL write + DynamoDB write", samples, baseline="MySQL write + DynamoDB write, sequential")

    _, _, page = seed_products(app, count=100)
    one = mysql_get(mysql_repo, pid)
    one_ddb = ddb_repo.get_by_id(pid)
    from shop.domain import Page
    page_m = Page(items=[mysql_get(mysql_repo, p.id) for p in page], total=100, page=1, limit=100)
    page_d = Page(items=[ddb_repo.get_by_id(p.id) for p in page], total=100, page=1, limit=100)
    assert not diff(page_m, page_d)
    compares = {"compare one product": lambda: diff(one, one_ddb),
                "compare a page of 100 products": lambda: diff(page_m, page_d)}
    report(f"comparison cost, {args.iterations} rounds (ratio to one product)",
           interleaved(compares, args.iterations), baseline="compare one product")
    _finish(client, state, spinner)


def _finish(client, state, spinner) -> None:
    client.close()
    state.runtime.close()
    if spinner is not None:
        spinner.terminate()


if __name__ == "__main__":
    main()
