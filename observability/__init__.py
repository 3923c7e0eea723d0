"""Telemetry bootstrap: OpenTelemetry traces over OTLP and JSON logs with trace ids.

Everything is configured by the standard OTEL_* variables. The exporter sends
from a background thread, so the application keeps serving with no collector.
"""
from __future__ import annotations

import logging
import os
import sys
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanProcessor
from pythonjsonlogger.json import JsonFormatter

# Jaeger v2 receives OTLP/HTTP on 4318.
DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"
_lock = threading.RLock()
_state = {"tracing": False, "logging": False, "pymysql": False, "botocore": False}


class TraceContextFilter(logging.Filter):
    """Adds the current trace and span ids to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else None
        return True


def json_handler(stream=None) -> logging.Handler:
    """A handler writing one JSON object per record, with trace and span ids."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s",
        rename_fields={"levelname": "level", "name": "logger", "asctime": "time"}))
    handler.addFilter(TraceContextFilter())
    return handler


def configure_logging(level: str | None = None) -> None:
    """JSON lines on stderr for the root logger, once per process.

    Records are queued and formatted and written by a background thread, so a log line
    costs the request thread only the record's creation. Trace ids are read before
    queueing, while the span is still current.
    """
    import atexit
    import queue
    from logging.handlers import QueueHandler, QueueListener

    with _lock:
        if _state["logging"]:
            return
        records: queue.Queue = queue.Queue(maxsize=100_000)
        handler = QueueHandler(records)
        handler.addFilter(TraceContextFilter())
        listener = QueueListener(records, json_handler(), respect_handler_level=False)
        listener.start()
        atexit.register(listener.stop)
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
        _state["logging"] = True


def tracer_provider() -> TracerProvider:
    """The process's SDK provider, created on first call with the OTLP exporter."""
    with _lock:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            return current
        resource = Resource.create({
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "shop"),
            "service.version": _version(),
            "deployment.environment": os.environ.get("SHOP_ENVIRONMENT", "development"),
        })
        provider = TracerProvider(resource=resource)
        if os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true":
            exporter = _exporter()
            if exporter is not None:
                provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        return trace.get_tracer_provider()


_metric_reader = None


def metric_reader():
    """The in-process reader of this process's OpenTelemetry metrics (the flag page reads it)."""
    meter_provider()
    return _metric_reader


def meter_provider():
    """The SDK meter provider: an in-process reader, plus OTLP export when
    OTEL_METRICS_EXPORTER=otlp (Jaeger takes traces only, so export is off by default)."""
    global _metric_reader
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader

    with _lock:
        current = metrics.get_meter_provider()
        if isinstance(current, MeterProvider):
            return current
        _metric_reader = InMemoryMetricReader()
        readers = [_metric_reader]
        if os.environ.get("OTEL_METRICS_EXPORTER", "none").lower() == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        provider = MeterProvider(metric_readers=readers, resource=tracer_provider().resource)
        metrics.set_meter_provider(provider)
        return provider


def add_span_processor(processor: SpanProcessor) -> None:
    tracer_provider().add_span_processor(processor)


def _exporter():
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower()
    if kind == "none":
        return None
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", DEFAULT_OTLP_ENDPOINT).rstrip("/")
        endpoint = f"{base}/v1/traces"
    return OTLPSpanExporter(endpoint=endpoint)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("shop")
    except Exception:
        return "0.0.0"


def init_app(app, settings=None) -> None:
    """Logging, tracing, and the Flask, pymysql and botocore instrumentations."""
    configure_logging()
    tracer_provider()
    meter_provider()
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.pymysql import PyMySQLInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls="static/.*")
    with _lock:
        if not _state["pymysql"]:
            PyMySQLInstrumentor().instrument()
            _state["pymysql"] = True
        if not _state["botocore"]:
            BotocoreInstrumentor().instrument()
            _state["botocore"] = True
