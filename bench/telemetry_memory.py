"""Two long-run figures: telemetry with no collector listening, and resident memory.

1. Routed reads with spans exported over OTLP/HTTP to a port where nothing listens, through the
   exporter the app ships (QuietExporter) and through the bare OTLP exporter, next to the same
   reads with spans handed to a discarding exporter (blocks in rotation, one run): latency
   change, and how many spans never reached a collector.
2. Resident set size of the process over a long run of dual reads and writes after warm-up.
"""
from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

from common import make_app, pct, seed_products

BASELINE = "spans discarded (baseline)"
QUIET = "collector absent, as shipped (QuietExporter)"
BARE = "collector absent, bare OTLP exporter"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--block", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--memory-calls", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=5000,
                        help="calls before the first reading: every bounded structure warmed up")
    parser.add_argument("--memory-only", action="store_true")
    args = parser.parse_args()

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from observability.export import QuietExporter

    class Switch(SpanExporter):
        """Sends each batch to nowhere, or to the dead collector through the exporter the app
        ships (QuietExporter: one warning, a batch tried every 30 s, the others dropped at once)
        or through the bare OTLP exporter (every batch tried, with its retries and log lines)."""
        def __init__(self):
            endpoint = "http://127.0.0.1:9/v1/traces"
            bare = OTLPSpanExporter(endpoint=endpoint, timeout=1)
            self.dead = {QUIET: QuietExporter(bare, endpoint), BARE: bare}
            self.mode = BASELINE
            self.counts = {"discarded": 0, "failed": 0, "exported": 0}
            self.lock = threading.Lock()

        def export(self, spans):
            if self.mode == BASELINE:
                with self.lock:
                    self.counts["discarded"] += len(spans)
                return SpanExportResult.SUCCESS
            result = self.dead[self.mode].export(spans)
            with self.lock:
                self.counts["failed" if result != SpanExportResult.SUCCESS else "exported"] += len(spans)
            return result

    switch = Switch()
    provider = TracerProvider()
    processor = BatchSpanProcessor(switch, schedule_delay_millis=200)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)

    from shop.aspects import PRESETS, use_flags
    app = make_app()
    _, _, (product,) = seed_products(app)
    repo = app.extensions["shop"].repos.products

    samples = {QUIET: [], BARE: [], BASELINE: []}
    modes = list(samples)
    with use_flags(PRESETS[0].flags):
        for b in range(0 if args.memory_only else args.blocks):
            for mode in modes[b % 3:] + modes[:b % 3]:  # each block starts from the next variant
                processor.force_flush(5000)
                switch.mode = mode
                for _ in range(args.block):
                    start = time.perf_counter_ns()
                    repo.get_by_id(product.id)
                    samples[mode].append((time.perf_counter_ns() - start) / 1000)
        processor.force_flush(10000)
    base = statistics.median(samples[BASELINE] or [1])
    if not args.memory_only:
        print_telemetry(args, samples, base, switch)
    switch.mode = BASELINE  # the memory run measures the app, not failing exports
    processor.force_flush(10000)
    memory(args, app, product)


def print_telemetry(args, samples, base, switch):
    print(f"\n## telemetry with no collector listening: {args.blocks} alternating blocks of {args.block} routed reads")
    print(f"{'variant':52} {'p50 µs':>9} {'p99 µs':>9} {'ratio':>7}")
    for name, vals in samples.items():
        print(f"{name:52} {pct(vals, 50):9.1f} {pct(vals, 99):9.1f} {statistics.median(vals) / base:7.3f}")
    print(f"spans sent towards the absent collector and dropped: {switch.counts['failed']}"
          f" (reached it: {switch.counts['exported']}); spans discarded in baseline blocks: {switch.counts['discarded']}")



def memory(args, app, product):
    import psutil
    from shop.aspects import PRESETS, use_flags
    process = psutil.Process(os.getpid())
    routed = app.extensions["shop"].repos
    with use_flags(PRESETS[2].flags):
        for i in range(args.warmup):
            routed.products.get_by_id(product.id)
            if i % 10 == 0:
                routed.products.set_inventory(product.id, 1000)
        warm = process.memory_info().rss
        marks = []
        for i in range(args.memory_calls):
            routed.products.get_by_id(product.id)
            if i % 10 == 0:
                routed.products.set_inventory(product.id, 1000)
            if i % (args.memory_calls // 5) == 0:
                marks.append(process.memory_info().rss)
        end = process.memory_info().rss
    print(f"\n## memory over {args.memory_calls} dual reads (+ a dual write every 10) after {args.warmup} warm-up calls")
    print(f"RSS after warm-up {warm / 2**20:.1f} MiB, along the run "
          f"{', '.join(f'{m / 2**20:.1f}' for m in marks)} MiB, at the end {end / 2**20:.1f} MiB:"
          f" growth {100 * (end - warm) / warm:.2f}%")
    app.extensions["shop"].runtime.close()


if __name__ == "__main__":
    main()
