"""Span export that says once when no collector answers, and the spans this process kept.

`QuietExporter` wraps the OTLP exporter: with no collector listening, the bare exporter logs a
warning and an error for every batch (about 30 lines a minute under light traffic, burying
real errors). Here the exporter's own lines are held back; one warning says the collector is
not answering, with the cause, and while it stays down a batch is tried only every
`probe_s` seconds (the others are dropped at once, so the export thread never sits in
retries). When a batch goes through again, one line says so.

`RecentSpans` keeps the last spans this process finished, small and bounded, so the flag page
can list a request's spans without Jaeger.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("observability")
EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.exporter.otlp.proto.http")
PROBE_S = 30.0


class _HoldBack(logging.Filter):
    """Drops the exporter's own records, keeping a batch's first message (it names the cause;
    the last one only says the batch failed)."""

    def __init__(self):
        super().__init__()
        self.last = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.last is None:
            self.last = record.getMessage()[:300]
        return False


class QuietExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, endpoint: str, probe_s: float = PROBE_S):
        self.inner, self.endpoint, self.probe_s = inner, endpoint, probe_s
        self.failing = False
        self._tried = float("-inf")
        self._held = _HoldBack()
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(self._held)

    def export(self, spans) -> SpanExportResult:
        if self.failing and time.monotonic() - self._tried < self.probe_s:
            return SpanExportResult.FAILURE  # dropped: the collector was down a moment ago
        self._tried = time.monotonic()
        self._held.last = None
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # noqa: BLE001 - an exporter bug must not kill the export thread
            self._held.last, result = f"{type(exc).__name__}: {exc}"[:300], SpanExportResult.FAILURE
        if result is SpanExportResult.FAILURE and not self.failing:
            self.failing = True
            log.warning("no trace collector answers at %s: spans are dropped (said once; tried again every %g s)",
                        self.endpoint, self.probe_s, extra={"event": "export", "cause": self._held.last})
        elif result is SpanExportResult.SUCCESS and self.failing:
            self.failing = False
            log.warning("the trace collector at %s answers again: spans are exported", self.endpoint,
                        extra={"event": "export"})
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class RecentSpans(SpanProcessor):
    """The last `capacity` spans this process finished, each as a small dict (names, ids, times,
    status and its `shop.*` attributes: keys and counts, never records' values)."""

    def __init__(self, capacity: int):
        self._spans: deque = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        kept = {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x"),
                "parent_id": format(span.parent.span_id, "016x") if span.parent else None, "name": span.name,
                "start_ns": span.start_time or 0, "ms": round(((span.end_time or 0) - (span.start_time or 0)) / 1e6, 3),
                "error": span.status.status_code.name == "ERROR", "events": len(span.events),
                "attributes": {k: v for k, v in (span.attributes or {}).items() if k.startswith("shop.")}}
        with self._lock:
            self._spans.append(kept)

    def trace(self, trace_id: str) -> list[dict]:
        """The kept spans of one trace, parents before children, siblings by start time."""
        with self._lock:
            # Ids can repeat (a caller reusing a trace id; a seeded random in tests): the newest wins.
            spans = list({s["span_id"]: s for s in self._spans if s["trace_id"] == trace_id}.values())
        children: dict = {}
        ids = {s["span_id"] for s in spans}
        for s in sorted(spans, key=lambda s: s["start_ns"]):
            children.setdefault(s["parent_id"] if s["parent_id"] in ids else None, []).append(s)
        out, seen = [], set()

        def walk(parent, depth):
            for s in children.get(parent, []):
                if s["span_id"] not in seen:  # never a cycle, whatever the ids
                    seen.add(s["span_id"])
                    out.append({**s, "depth": depth})
                    walk(s["span_id"], depth + 1)
        walk(None, 0)
        return out

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
