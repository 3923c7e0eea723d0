"""How a route's dual reads run (inline, concurrent or MySQL on the pool), and that each way keeps
the timeout policy."""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlparse

import pytest

from shop import create_app
from shop.aspects import PRESETS, use_flags
from shop.aspects.pace import CONCURRENT, INLINE, MYSQL_POOLED, WAYS, Pace, Recent
from shop.config import ConfigError, Settings

from reliability.proxy import Proxy

from .test_aspects_routing import _tamper, dual, stores  # noqa: F401  (fixtures shared with routing)


def fast_dynamodb(pace, n=Recent.WINDOW):
    for _ in range(n):
        pace.dynamodb.add(0.001)


def test_concurrent_until_dynamodb_has_answered_fast_for_a_whole_window(settings):
    pace = Pace(settings)
    assert pace.choose("auto") == CONCURRENT
    fast_dynamodb(pace, Recent.WINDOW - 1)
    assert pace.choose("auto") == CONCURRENT
    fast_dynamodb(pace, 1)
    assert pace.choose("auto") == INLINE  # never measured: measure it
    pace.dynamodb.add(settings.dual_read_timeout_ms / 1000)  # one slow answer in the window
    assert pace.choose("auto") == CONCURRENT


def test_a_dynamodb_read_running_past_the_limit_sends_the_next_reads_to_the_pool(settings):
    """When DynamoDB stalls, the reads under way on the request's thread say so before they end:
    the next reads go back to the pool (which keeps the timeout) instead of stalling as well."""
    pace = Pace(settings)
    fast_dynamodb(pace)
    assert pace.choose("auto") != CONCURRENT
    stalled = pace.dynamodb.start()
    assert pace.choose("auto") != CONCURRENT  # just begun: within the limit
    pace.dynamodb.running[stalled] -= pace.dynamodb.limit * 2  # begun long ago, still running
    assert [pace.choose("auto") for _ in range(3)] == [CONCURRENT] * 3
    pace.dynamodb.finish(stalled)  # it ended, late: in the window now
    assert pace.choose("auto") == CONCURRENT


def test_a_stall_under_way_on_one_route_sends_every_route_to_the_pool(settings):
    """A route whose own DynamoDB answers were all fast learns of a stall from the reads other
    routes have under way, instead of running into it on the request's thread itself."""
    app = create_app(settings)
    runtime = app.extensions["shop"].runtime
    try:
        products, users = runtime.pace("ProductRepository.get_by_id"), runtime.pace("UserRepository.get_by_id")
        fast_dynamodb(products)
        fast_dynamodb(users)
        assert users.choose("auto") != CONCURRENT
        stalled = products.dynamodb.start()
        products.dynamodb.running[stalled] -= products.dynamodb.limit * 2  # begun long ago, still running
        assert users.choose("auto") == CONCURRENT
        products.dynamodb.finish(stalled)
        assert users.choose("auto") != CONCURRENT  # its own answers were fast; the stall is over
        assert products.choose("auto") == CONCURRENT  # the late answer is in this route's window
    finally:
        runtime.close()


@pytest.mark.parametrize("best", WAYS)
def test_the_cheapest_way_wins_and_the_others_are_measured_again_now_and_then(settings, best):
    pace = Pace(settings)
    fast_dynamodb(pace)
    cost = {way: (0.002 if way == best else 0.004) for way in WAYS}
    for _ in range(5):
        for way in WAYS:
            pace.record(way, cost[way])
    chosen = [pace.choose("auto") for _ in range(Pace.EXPLORE * 4)]
    others = [way for way in WAYS if way != best]
    assert [chosen.count(way) for way in others] == [2, 2] and chosen.count(best) == Pace.EXPLORE * 4 - 4
    for _ in range(Recent.WINDOW):  # the load changed: another way is now cheaper
        pace.record(others[0], 0.001)
    assert pace.choose("auto") == others[0]


def test_a_setting_can_fix_the_way():
    assert Pace(Settings()).choose("inline") == INLINE
    assert Pace(Settings()).choose(MYSQL_POOLED) == MYSQL_POOLED
    assert Settings.from_env(dual_read_execution="mysql-pooled").dual_read_execution == MYSQL_POOLED
    assert Settings.from_env(dual_read_execution="concurrent").dual_read_execution == "concurrent"
    with pytest.raises(ConfigError):
        Settings.from_env(dual_read_execution="parallel")


@pytest.mark.parametrize("way", [INLINE, CONCURRENT, MYSQL_POOLED])
def test_a_late_dynamodb_answer_is_a_timeout_either_way(settings, dual, way):  # noqa: F811
    _, _, p = dual
    proxy = Proxy(urlparse(settings.dynamodb_endpoint).port)
    proxy.latency = 0.5  # every DynamoDB answer arrives half a second late
    app = create_app(replace(settings, dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}",
                             dual_read_execution=way, dual_read_timeout_ms=100))
    runtime = app.extensions["shop"].runtime
    try:
        with use_flags(PRESETS[2].flags):  # MySQL authoritative: its answer is served
            assert app.extensions["shop"].repos.products.get_by_id(p.id) == p
        assert runtime.stats.snapshot()["comparisons"] == {"timeout": 1}
    finally:
        runtime.close()
        proxy.close()


@pytest.mark.parametrize("way", [INLINE, CONCURRENT, MYSQL_POOLED])
def test_both_ways_compare_and_report_differences(settings, dual, dynamo, way):  # noqa: F811
    from decimal import Decimal

    from shop.aspects import DualReadMismatch
    _, _, p = dual
    app = create_app(replace(settings, dual_read_execution=way))
    repo = app.extensions["shop"].repos.products
    with use_flags(PRESETS[2].flags):
        assert repo.get_by_id(p.id) == p
        _tamper(dynamo, p.id, "SET price = :v", {":v": Decimal("1.00")})
        with pytest.raises(DualReadMismatch):
            repo.get_by_id(p.id)
    app.extensions["shop"].runtime.close()


def test_mysql_pooled_reads_never_queue_mysql_behind_a_busy_pool(settings, dual):  # noqa: F811
    """With every pool thread busy (DynamoDB reads of other routes stalling), MySQL's read runs
    on the request's thread once DynamoDB answered, rather than waiting for a free thread."""
    import threading

    _, _, p = dual
    app = create_app(replace(settings, dual_read_execution=MYSQL_POOLED, dual_read_workers=1))
    runtime = app.extensions["shop"].runtime
    held, answer = threading.Event(), []
    runtime._pool.submit(held.wait)  # the pool's only thread, taken until the read is over

    def read():
        with use_flags(PRESETS[2].flags):
            answer.append(app.extensions["shop"].repos.products.get_by_id(p.id))
    reader = threading.Thread(target=read, daemon=True)
    try:
        reader.start()
        reader.join(timeout=30)  # a read queued behind the held thread would never end
        assert not reader.is_alive() and answer == [p]
        assert runtime.stats.snapshot()["comparisons"] == {"match": 1}
    finally:
        held.set()
        runtime.close()


def test_a_stalled_dynamodb_write_is_left_at_the_deadline_and_recorded_for_repair(settings, dual):  # noqa: F811
    _, _, p = dual
    proxy = Proxy(urlparse(settings.dynamodb_endpoint).port)
    proxy.latency = 0.5  # every DynamoDB answer arrives half a second late
    app = create_app(replace(settings, dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}",
                             dual_write_timeout_ms=100))
    runtime = app.extensions["shop"].runtime
    try:
        before = {e["id"] for e in runtime.repair_log.pending()}
        with use_flags(PRESETS[1].flags):  # MySQL's answer, without waiting for DynamoDB's
            assert app.extensions["shop"].repos.products.set_inventory(p.id, 4).inventory_quantity == 4
        recorded = [(e["entity"], str(e["entity_id"])) for e in runtime.repair_log.pending() if e["id"] not in before]
        assert recorded == [("product", str(p.id))]
    finally:
        runtime.close()
        proxy.close()
