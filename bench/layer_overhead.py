"""What the routing layer costs per call, MySQL-only scenario.

Measured side by side in one run, interleaved (A, B, C, A, B, C, ...) so machine noise hits
every variant alike: the unwrapped repository method, the routed call with spans not recorded
(the request is sampled out), and the routed call with every span recorded (exported to a
discarding exporter through the batch processor), with and without the span events that carry
each call's log fields (SHOP_SPAN_EVENTS). Each call runs inside a request span, as in
the storefront. Prints p50/p99 and ratios of medians.

    make bench            (or: .venv/bin/python bench/layer_overhead.py --iterations 3000)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult  # noqa: E402


class Toggle(Sampler):
    """Records spans or drops them, switchable between measurements."""
    on = True

    def should_sample(self, *args, **kwargs):
        return SamplingResult(Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP)

    def get_description(self):
        return "toggle"


class Discard(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()

    sampler = Toggle()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
    trace.set_tracer_provider(provider)

    from observability import events
    from shop.aspects import MYSQL_ONLY, use_flags
    from shop.domain import NewProduct, NewUser
    from shop.repositories.mysql import ProductRepository

    from common import make_app
    app = make_app()
    state = app.extensions["shop"]
    repos = state.repos
    suffix = str(time.time_ns())
    seller = repos.users.create(NewUser(username=f"bench{suffix}"[:50], email=f"b{suffix}@x.com", password_hash="h"))
    cat = repos.categories.create(f"Bench {suffix}", None)
    product = repos.products.create(seller.id, NewProduct(category_id=cat.id, name="Bench", price=Decimal("1.00"),
                                                          inventory_quantity=5))
    unwrapped_get = ProductRepository.__dict__["get_by_id"].__wrapped__
    unwrapped_set = ProductRepository.__dict__["set_inventory"].__wrapped__
    repo = repos.products

    def unwrapped_read():
        unwrapped_get(repo, product.id)

    def routed_read():
        repo.get_by_id(product.id)

    def unwrapped_write():
        unwrapped_set(repo, product.id, 5)

    def routed_write():
        repo.set_inventory(product.id, 5)

    cases = {  # name: (call, spans recorded, span events)
        "read: unwrapped": (unwrapped_read, False, True), "read: routed, spans not recorded": (routed_read, False, True),
        "read: routed, spans recorded, no events": (routed_read, True, False),
        "read: routed, spans recorded": (routed_read, True, True),
        "write: unwrapped": (unwrapped_write, False, True),
        "write: routed, spans not recorded": (routed_write, False, True),
        "write: routed, spans recorded, no events": (routed_write, True, False),
        "write: routed, spans recorded": (routed_write, True, True),
    }
    samples = {name: [] for name in cases}
    tracer = trace.get_tracer("bench")

    def in_request(fn, record, with_events):
        """As inside a request: a request span, sampled in or out like everything under it."""
        sampler.on = record
        events.ENABLED = with_events
        with tracer.start_as_current_span("GET /api/products/<id>"):
            start = time.perf_counter_ns()
            fn()
            return (time.perf_counter_ns() - start) / 1000

    with use_flags(MYSQL_ONLY):
        for _ in range(50):  # warm up connections and caches
            for fn, _rec, _ev in cases.values():
                fn()
        for _ in range(args.iterations):
            for name, (fn, record, with_events) in cases.items():
                samples[name].append(in_request(fn, record, with_events))
    provider.force_flush()

    def pct(values, p):
        values = sorted(values)
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

    print(f"layer overhead, MySQL-only scenario, {args.iterations} interleaved iterations per variant")
    print(f"{'variant':42} {'p50 µs':>9} {'p99 µs':>9} {'ratio p50':>10}")
    for kind in ("read", "write"):
        base = statistics.median(samples[f"{kind}: unwrapped"])
        for name in cases:
            if name.startswith(kind):
                vals = samples[name]
                print(f"{name:42} {pct(vals, 50):9.1f} {pct(vals, 99):9.1f} {statistics.median(vals) / base:10.3f}")
        with_events = statistics.median(samples[f"{kind}: routed, spans recorded"])
        without = statistics.median(samples[f"{kind}: routed, spans recorded, no events"])
        print(f"{kind}: span events add {with_events - without:.1f} µs at the median ({with_events / without:.3f}x)")
    state.runtime.close()


if __name__ == "__main__":
    main()
