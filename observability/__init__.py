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
# Not traced: static files, and Prometheus scraping /metrics every few seconds.
EXCLUDED_URLS = r"static/.*,/metrics(\?|$)"
_lock = threading.RLock()
_state = {"tracing": False, "logging": False, "pymysql": False, "botocore": False}


class TraceContextFilter(logging.Filter):
    """Adds the current trace and span ids to every record that has none yet.

    A queued record is filtered twice: on the thread that logged it, where its span is
    current, and again on the listener's thread, where no span is; the first ids stand.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if "trace_id" in record.__dict__:
            return True
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
        _state["listener"] = listener
        atexit.register(listener.stop)
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
        _state["logging"] = True


def recent_spans():
    """The spans this process kept for the flag page (export.RecentSpans), or None."""
    return _state.get("recent")


def log_listener():
    """The thread writing the queued log records (None before configure_logging)."""
    return _state.get("listener")


def tracer_provider(cli: bool = False) -> TracerProvider:
    """The process's SDK provider, created on first call with the exporter of export_settings()."""
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
        _state["export"] = export_settings(cli)
        exporter = _exporter(_state["export"])
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        return trace.get_tracer_provider()


def add_span_processor(processor: SpanProcessor) -> None:
    tracer_provider().add_span_processor(processor)


# A command that exits waits for its spans to be exported; with no collector listening the
# OTLP exporter retries for its whole timeout (10 s by default) first.
CLI_EXPORT_TIMEOUT_S = 1.0


def export_settings(cli: bool = False) -> dict:
    """Where spans go: {"exporter": "otlp" | "console" | "none", "endpoint", "timeout_s"}.

    A server exports over OTLP by default. A command-line process (`flask --app shop ...`)
    exports only when OTEL_TRACES_EXPORTER asks for it, and then gives up after
    CLI_EXPORT_TIMEOUT_S, so no command waits on an absent collector.
    """
    requested = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    kind = requested or ("none" if cli else "otlp")
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        kind = "none"
    if kind != "otlp":
        return {"exporter": kind, "endpoint": None, "timeout_s": None}
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", DEFAULT_OTLP_ENDPOINT).rstrip("/")
        endpoint = f"{base}/v1/traces"
    timeout = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT")
    try:
        timeout_s = float(timeout) if timeout else 10.0  # seconds, as the Python exporter reads it
    except ValueError:
        timeout_s = 10.0
    if cli:
        timeout_s = min(timeout_s, CLI_EXPORT_TIMEOUT_S)
    return {"exporter": "otlp", "endpoint": endpoint, "timeout_s": timeout_s}


def active_export_settings() -> dict | None:
    """The export_settings() this process's provider was built with (None before)."""
    return _state.get("export")


def _exporter(config: dict):
    if config["exporter"] == "none":
        return None
    if config["exporter"] == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from .export import QuietExporter
    # With no collector listening, one warning instead of two lines per batch (export.py).
    return QuietExporter(OTLPSpanExporter(endpoint=config["endpoint"], timeout=config["timeout_s"]),
                         config["endpoint"])


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("shop")
    except Exception:
        return "0.0.0"


def init_app(app, settings=None) -> None:
    """Logging, tracing, and the Flask, pymysql and botocore instrumentations."""
    import click

    configure_logging()
    # Loaded by the `flask` command (a click context is active): a short-lived process.
    cli = click.get_current_context(silent=True) is not None
    provider = tracer_provider(cli=cli)
    capacity = getattr(settings, "recent_spans", 0)
    with _lock:
        if capacity and not cli and "recent" not in _state:
            from .export import RecentSpans
            _state["recent"] = RecentSpans(capacity)
            provider.add_span_processor(_state["recent"])
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.pymysql import PyMySQLInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls=EXCLUDED_URLS)
    with _lock:
        if not _state["pymysql"]:
            PyMySQLInstrumentor().instrument()
            _state["pymysql"] = True
        if not _state["botocore"]:
            BotocoreInstrumentor().instrument()
            _state["botocore"] = True
