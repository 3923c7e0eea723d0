"""Dual reads and dual writes next to the peers, on the same repository calls, in one run.

Peers (from PyPI, offline): LaunchDarkly's Python SDK migration support (`ldclient.migrations`
Migrator, flag from its TestData source, execution order PARALLEL and SERIAL) and laboratory
(the Python port of GitHub's Scientist). Every variant compares with the same comparator.
"""
from __future__ import annotations

import argparse
import statistics

from common import interleaved, make_app, report, seed_products


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()

    import laboratory
    from ldclient import Config, Context, LDClient
    from ldclient.integrations.test_data import TestData
    from ldclient.migrations import ExecutionOrder, MigratorBuilder, Stage

    from shop import Repositories
    from shop.aspects import PRESETS, use_flags
    from shop.aspects.compare import diff
    from shop.repositories.mysql import ProductRepository

    app = make_app()
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

    def ours_write():
        with use_flags(PRESETS[1].flags):
            return mysql_repo.set_inventory(pid, 1000)

    reads = {
        "MySQL alone (unwrapped)": lambda: mysql_get(mysql_repo, pid),
        "DynamoDB alone": lambda: ddb_repo.get_by_id(pid),
        "shop dual read (concurrent)": ours_read,
        "LaunchDarkly Migrator PARALLEL": lambda: ld_parallel.read("migration", context, Stage.OFF),
        "LaunchDarkly Migrator SERIAL": lambda: ld_serial.read("migration", context, Stage.OFF),
        "laboratory Experiment": lab_read,
    }
    samples = interleaved(reads, args.iterations)
    slower = max(statistics.median(samples["MySQL alone (unwrapped)"]), statistics.median(samples["DynamoDB alone"]))
    report(f"dual read of one product, {args.iterations} interleaved rounds; ratio to the slower single store",
           samples, baseline=slower)

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
    client.close()
    state.runtime.close()


if __name__ == "__main__":
    main()
