"""Migration health for the whole server: calls, errors and latency per store and operation,
comparison outcomes, mismatched attributes per entity, repairs recorded, circuit breakers.

Prometheus metrics (prometheus_client). Under gunicorn, `PROMETHEUS_MULTIPROC_DIR` is set
(gunicorn.conf.py) and every worker writes its samples into files there; reading sums them
across workers, so `/metrics`, the flag page and `/flags/health.json` show the same numbers
whichever worker answers. Without that directory (tests, one process) each application keeps
its own in-process registry.
"""
from __future__ import annotations

import math
import os
import time
from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from .breaker import CLOSED, HALF_OPEN, OPEN

# Seconds; a MySQL read here takes ~0.4 ms, a DynamoDB Local call a few ms, a timeout seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BREAKER_STATES = (CLOSED, HALF_OPEN, OPEN)  # the gauge's values 0, 1, 2


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Stats:
    def __init__(self, entity_of=lambda repository: repository):
        self.entity_of = entity_of  # a repository class's name -> the entity its mismatches are counted under
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.duration = Histogram("shop_store_duration_seconds", "One repository call on one store (its count is"
                                  " the number of calls)", ["store", "kind", "operation"], buckets=BUCKETS, registry=r)
        self.errors = Counter("shop_store_errors", "Repository calls that raised, per store and error type",
                              ["store", "kind", "operation", "error_type"], registry=r)
        self.comparisons = Counter("shop_compare_outcomes", "Dual-read comparisons by outcome",
                                   ["operation", "outcome"], registry=r)
        self.mismatches = Counter("shop_compare_mismatches", "Mismatched dual reads, per entity and attribute",
                                  ["entity", "attribute"], registry=r)
        self.last_mismatch = Gauge("shop_compare_last_mismatch_timestamp_seconds", "When each kind of mismatch"
                                   " was last seen", ["operation", "attributes"], multiprocess_mode="max", registry=r)
        # A browser's trial of dual reads (its flag cookie, the server not dual-reading): counted
        # apart, never in the server's comparisons, mismatches or last mismatch (the gates' evidence).
        self.trial_comparisons = Counter("shop_trial_compare_outcomes", "Dual-read comparisons of browsers'"
                                         " trial flags, by outcome (not the server's evidence)",
                                         ["operation", "outcome"], registry=r)
        self.repairs = Counter("shop_repairs_recorded", "Secondary writes recorded for repair", ["operation"],
                               registry=r)
        self.fallbacks = Counter("shop_read_fallbacks", "Phase 4 reads served by MySQL because DynamoDB failed"
                                 " or was late", ["operation"], registry=r)
        self.mirrors = Counter("shop_mirror_outcomes", "DynamoDB halves of dual writes by outcome: applied,"
                               " superseded (a newer copy was there), awaiting_backfill, diverged, failed",
                               ["operation", "outcome"], registry=r)
        self.breaker = Gauge("shop_circuit_breaker_state", "DynamoDB circuit breaker of each worker: 0 closed,"
                             " 1 half-open, 2 open", multiprocess_mode="liveall", registry=r)
        # Each worker's view of the server phase: the phase it routes by (0: a custom mix) and
        # when it last read the phase document (/metrics derives shop_phase_age_seconds).
        self.phase = Gauge("shop_phase", "The server phase each worker routes by (0: a custom mix)",
                           multiprocess_mode="liveall", registry=r)
        self.phase_read = Gauge("shop_phase_read_timestamp_seconds", "When each worker last read the phase"
                                " document", multiprocess_mode="liveall", registry=r)
        # Per entity, what an operator reads at a glance while exposing reads gradually
        # (docs/enable-flags.md): reads and their latency per store, verdicts, shadow drops,
        # the guard's steps, and the exposure each worker applies.
        self.entity_reads = Histogram("shop_entity_read_seconds", "One read of an entity on one store",
                                      ["entity", "store"], buckets=BUCKETS, registry=r)
        self.entity_read_errors = Counter("shop_entity_read_errors", "Reads of an entity a store failed or"
                                          " answered too late", ["entity", "store"], registry=r)
        self.entity_comparisons = Counter("shop_entity_comparisons", "Dual-read verdicts per entity",
                                          ["entity", "outcome"], registry=r)
        self.shadow_dropped = Counter("shop_shadow_dropped", "Shadow comparisons dropped: the shadow pool was full",
                                      ["entity"], registry=r)
        self.guard_steps = Counter("shop_guard_steps", "Steps back the guard took, per entity and limit broken",
                                   ["entity", "limit"], registry=r)
        self.exposure = Gauge("shop_exposure_percent", "Per entity: the share of requests compared (compare) and"
                              " of readers served by DynamoDB in phase 3 (rollout)", ["entity", "kind"],
                              multiprocess_mode="livemostrecent", registry=r)
        self._timers: dict[tuple, object] = {}  # (store, kind, operation) -> its histogram child
        self._entity_timers: dict[tuple, object] = {}

    # --- recording (the request path) -----------------------------------------------------

    def call(self, store: str, kind: str, operation: str, ms: float, error: BaseException | None) -> None:
        key = (store, kind, operation)
        timer = self._timers.get(key)
        if timer is None:
            timer = self._timers.setdefault(key, self.duration.labels(store, kind, operation))
        timer.observe(ms / 1000)
        if error is not None:
            self.errors.labels(store, kind, operation, type(error).__name__).inc()

    def entity_read(self, entity: str, store: str, seconds: float, failed: bool) -> None:
        key = (entity, store)
        timer = self._entity_timers.get(key)
        if timer is None:
            timer = self._entity_timers.setdefault(key, self.entity_reads.labels(entity, store))
        timer.observe(seconds)
        if failed:
            self.entity_read_errors.labels(entity, store).inc()

    def entity_comparison(self, entity: str, outcome: str) -> None:
        self.entity_comparisons.labels(entity, outcome).inc()

    def dropped(self, entity: str) -> None:
        self.shadow_dropped.labels(entity).inc()

    def guard_step(self, entity: str, limit: str) -> None:
        self.guard_steps.labels(entity, limit).inc()

    def exposed(self, entity: str, compare_percent: float, rollout_percent: float) -> None:
        self.exposure.labels(entity, "compare").set(compare_percent)
        self.exposure.labels(entity, "rollout").set(rollout_percent)

    def comparison(self, operation: str, outcome: str, attributes=()) -> None:
        self.comparisons.labels(operation, outcome).inc()
        if outcome == "mismatch":
            entity = self.entity_of(operation.split(".", 1)[0])
            for name in attributes:
                self.mismatches.labels(entity, name).inc()
            self.last_mismatch.labels(operation, ",".join(attributes)).set(time.time())

    def trial_comparison(self, operation: str, outcome: str) -> None:
        self.trial_comparisons.labels(operation, outcome).inc()

    def repair(self, operation: str, count: int) -> None:
        self.repairs.labels(operation).inc(count)

    def fallback(self, operation: str) -> None:
        self.fallbacks.labels(operation).inc()

    def mirror(self, operation: str, outcome: str) -> None:
        self.mirrors.labels(operation, outcome).inc()

    def phase_seen(self, state, at: float) -> None:
        self.phase.set(state.phase or 0)
        self.phase_read.set(at)

    def breaker_state(self, state: str) -> None:
        self.breaker.set(BREAKER_STATES.index(state))

    # --- reading --------------------------------------------------------------------------

    def families(self) -> list:
        """The metric families of the whole server (all workers), or of this app alone."""
        path = multiprocess_dir()
        if path:
            return list(MultiProcessCollector(None, path).collect())
        return list(self.registry.collect())

    def snapshot(self) -> dict:
        return summarize(self.families())


# Counters the health view shows as {label value: count}: metric -> (its key in the view, the label).
TALLIES = {
    "shop_compare_outcomes_total": ("comparisons", "outcome"),
    "shop_mirror_outcomes_total": ("mirrors", "outcome"),
    "shop_trial_compare_outcomes_total": ("trial_comparisons", "outcome"),
}


def summarize(families) -> dict:
    """The health view of a set of metric families: what the flag page and health.json show."""
    buckets = defaultdict(lambda: defaultdict(float))  # (store, kind, operation) -> le -> count
    errors = defaultdict(int)
    tallies = {key: defaultdict(int) for key, _ in TALLIES.values()}
    mismatches, breakers, last = defaultdict(int), [], None
    for name, labels, value in ((s.name, s.labels, s.value) for f in families for s in f.samples):
        if name in TALLIES:
            key, label = TALLIES[name]
            tallies[key][labels[label]] += int(value)
        elif name == "shop_store_duration_seconds_bucket":
            buckets[(labels["store"], labels["kind"], labels["operation"])][float(labels["le"])] += value
        elif name == "shop_store_errors_total":
            errors[(labels["store"], labels["kind"], labels["operation"])] += int(value)
        elif name == "shop_compare_mismatches_total":
            mismatches[f'{labels["entity"]}.{labels["attribute"]}'] += int(value)
        elif name == "shop_compare_last_mismatch_timestamp_seconds" and (last is None or value > last[0]):
            last = (value, labels)
        elif name == "shop_circuit_breaker_state":
            breakers.append(BREAKER_STATES[int(value)])
    worst = max(breakers, key=BREAKER_STATES.index, default=CLOSED)
    return {
        **_latencies(buckets, errors), **{key: dict(counts) for key, counts in tallies.items()},
        "mismatches": dict(sorted(mismatches.items(), key=lambda kv: -kv[1])),
        "last_mismatch": last and {"operation": last[1]["operation"],
                                   "attributes": [a for a in last[1]["attributes"].split(",") if a],
                                   "at": round(last[0], 3)},
        "circuit_breaker": worst, "circuit_breakers": {s: breakers.count(s) for s in BREAKER_STATES if s in breakers},
    }


def _latencies(buckets: dict, errors: dict) -> dict:
    """Calls, errors and quantiles by store and kind, and by operation and store."""
    by_kind = defaultdict(lambda: defaultdict(float))
    operations: dict = {}
    kind_errors = defaultdict(int)
    for (store, kind, operation), counts in sorted(buckets.items()):
        for le, n in counts.items():
            by_kind[(store, kind)][le] += n
        kind_errors[(store, kind)] += errors[(store, kind, operation)]
        operations.setdefault(operation, {})[store] = _row(counts, errors[(store, kind, operation)])
    stores: dict = {}
    for (store, kind), counts in sorted(by_kind.items()):
        stores.setdefault(store, {})[kind] = _row(counts, kind_errors[(store, kind)])
    return {"stores": stores, "operations": operations}


def _row(counts: dict, errors: int) -> dict:
    cumulative = sorted(counts.items())
    return {"calls": int(cumulative[-1][1]) if cumulative else 0, "errors": errors,
            "p50_ms": round(quantile(0.5, cumulative) * 1000, 3), "p99_ms": round(quantile(0.99, cumulative) * 1000, 3)}


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile: linear interpolation inside the bucket holding rank q."""
    if not cumulative or cumulative[-1][1] == 0:
        return 0.0
    rank = q * cumulative[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in cumulative:
        if count >= rank:
            if math.isinf(upper):
                return lower  # beyond the largest bound: its lower edge, as Prometheus does
            return lower + (upper - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = upper, count
    return lower
