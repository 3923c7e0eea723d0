"""Migration health since start: calls, errors, latency percentiles, comparison outcomes.

OpenTelemetry instruments carry the same figures to a collector; this in-process copy is
what the flag page and its JSON read, without a collector.
"""
from __future__ import annotations

import threading
from collections import defaultdict, deque

from opentelemetry import metrics

_meter = metrics.get_meter("shop.aspects")
DURATION = _meter.create_histogram("shop.store.duration", unit="ms",
                                   description="Duration of one repository call on one store")
ERRORS = _meter.create_counter("shop.store.errors", description="Repository calls that raised, per store")
# Recording into the SDK's histogram costs ~17 µs, a tenth of a MySQL read on a small machine.
# Calls append to this buffer instead (~1 µs); the SDK drains it when metrics are collected.
# Bounded: with no exporter nothing collects, and between collections only the most recent
# samples reach shop.store.duration. Errors are counted exactly, at once (they are rare).
_PENDING: deque = deque(maxlen=8192)


def _drain(options):
    drained = 0
    while True:
        try:
            ms, store, kind, operation = _PENDING.popleft()
        except IndexError:
            break
        DURATION.record(ms, {"store": store, "kind": kind, "operation": operation})
        drained += 1
    yield metrics.Observation(drained)


_meter.create_observable_gauge("shop.store.samples_flushed", callbacks=[_drain],
                               description="Call samples moved into shop.store.duration at this collection")
# Comparison outcomes are counted here and observed at collection, for the same reason:
# a synchronous counter add costs a dual read more than the count itself.
_COMPARED: dict = defaultdict(int)  # (operation, outcome) -> count since the process started
_compared_lock = threading.Lock()


def _observe_comparisons(options):
    with _compared_lock:
        counted = list(_COMPARED.items())
    for (operation, outcome), n in counted:
        yield metrics.Observation(n, {"operation": operation, "outcome": outcome})


_meter.create_observable_counter("shop.compare.outcomes", callbacks=[_observe_comparisons],
                                 description="Dual-read comparison outcomes")
REPAIRS = _meter.create_counter("shop.repairs.recorded", description="Secondary writes recorded for repair")


class Stats:
    WINDOW = 2048  # latencies kept per (store, kind) for the percentiles

    def __init__(self):
        self._lock = threading.Lock()
        self._calls = defaultdict(int)
        self._errors = defaultdict(int)
        self._latency = defaultdict(lambda: deque(maxlen=self.WINDOW))
        self._outcomes = defaultdict(int)
        self.last_mismatch: dict | None = None

    def call(self, store: str, kind: str, operation: str, ms: float, error: BaseException | None) -> None:
        _PENDING.append((ms, store, kind, operation))
        if error is not None:
            ERRORS.add(1, {"store": store, "kind": kind, "operation": operation, "error.type": type(error).__name__})
        with self._lock:
            self._calls[(store, kind)] += 1
            self._latency[(store, kind)].append(ms)
            if error is not None:
                self._errors[(store, kind)] += 1

    def comparison(self, operation: str, outcome: str, attributes=()) -> None:
        with _compared_lock:
            _COMPARED[(operation, outcome)] += 1
        with self._lock:
            self._outcomes[outcome] += 1
            if outcome == "mismatch":
                self.last_mismatch = {"operation": operation, "attributes": list(attributes)}

    def repair(self, operation: str, count: int) -> None:
        REPAIRS.add(count, {"operation": operation})

    def snapshot(self) -> dict:
        with self._lock:
            stores = {}
            for (store, kind), n in sorted(self._calls.items()):
                lat = sorted(self._latency[(store, kind)])
                stores.setdefault(store, {})[kind] = {
                    "calls": n, "errors": self._errors[(store, kind)],
                    "p50_ms": round(_pct(lat, 50), 3), "p99_ms": round(_pct(lat, 99), 3)}
            return {"stores": stores, "comparisons": dict(self._outcomes),
                    "last_mismatch": self.last_mismatch}


def _pct(values, p) -> float:
    if not values:
        return 0.0
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]
