"""The limits the guard and the canary gates judge an entity's reads by (shop.migration.limits),
on evidence counted the way every worker counts it: a read per store, its time in a bucket.

The latency limit judges a p99, and the p99 of a handful of reads is their slowest one: a CI run
saw a guard test step back for latency on 10 reads, one of which met a pause.
"""
from __future__ import annotations

from collections import defaultdict

from shop.migration.evidence import EntityEvidence, _bound
from shop.migration.limits import LATENCY, P99_MIN_READS, Limits

LIMITS = Limits(mismatch_rate=0.01, error_rate=0.05, latency_ratio=4.0, latency_floor_ms=250, min_samples=8)


def _evidence(**reads_ms: list[float]) -> EntityEvidence:
    counts = defaultdict(int)
    for store, times in reads_ms.items():
        for ms in times:
            counts[f"read.{store}.ok"] += 1
            counts[f"ms.{store}.{_bound(ms)}"] += 1
    return EntityEvidence("product", counts)


def _latency(ev: EntityEvidence):
    (verdict,) = [v for v in LIMITS.verdicts(ev) if v.limit == LATENCY]
    return verdict


def test_one_slow_read_among_a_few_says_nothing_either_way():
    verdict = _latency(_evidence(dynamodb=[8.0] * 9 + [2_000.0], mysql=[2.0] * 10))
    assert verdict.ok is None and f"fewer than the {P99_MIN_READS} a p99 needs" in verdict.detail
    assert LIMITS.broken(_evidence(dynamodb=[8.0] * 9 + [2_000.0], mysql=[2.0] * 10)) == []


def test_a_slow_tail_over_enough_reads_breaks_the_limit():
    verdict = _latency(_evidence(dynamodb=[8.0] * 190 + [900.0] * 10, mysql=[2.0] * 200))
    assert verdict.ok is False and "DynamoDB p99" in verdict.detail and "limit 250 ms" in verdict.detail


def test_one_pause_in_two_hundred_reads_is_within_the_p99():
    assert _latency(_evidence(dynamodb=[8.0] * 199 + [2_000.0], mysql=[2.0] * 200)).ok is True


def test_the_floor_keeps_a_fast_store_from_failing_on_the_ratio_alone():
    # 18 ms is nine times MySQL's 2 ms, and nothing a shopper notices.
    verdict = _latency(_evidence(dynamodb=[18.0] * 200, mysql=[2.0] * 200))
    assert verdict.ok is True and "at least 250 ms" in verdict.detail


def test_the_ratio_judges_a_store_slow_against_a_slow_mysql():
    # MySQL's p99 of about 100 ms puts the limit at 4x that, above the floor.
    slow_mysql = [90.0] * 200
    assert _latency(_evidence(dynamodb=[180.0] * 200, mysql=slow_mysql)).ok is True
    assert _latency(_evidence(dynamodb=[1_500.0] * 200, mysql=slow_mysql)).ok is False
