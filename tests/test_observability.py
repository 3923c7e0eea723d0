"""Traces and logs: span content in memory, the OTLP/HTTP export path for real, JSON logs."""
from __future__ import annotations

import json
import logging
import threading
from logging.handlers import QueueHandler
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import observability

from .conftest import poll


@pytest.fixture(scope="module")
def memory():
    exporter = InMemorySpanExporter()
    observability.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_request_span_with_mysql_children(client, seller, memory):
    memory.clear()
    prod = seller[3]
    assert client.get(f"/api/products/{prod['id']}").status_code == 200
    spans = memory.get_finished_spans()
    server = [s for s in spans if s.name == "GET /api/products/<product_id>"]
    assert len(server) == 1
    db_spans = [s for s in spans if s.attributes.get("db.system") == "mysql"
                or s.attributes.get("db.system.name") == "mysql"]
    assert db_spans, [s.name for s in spans]
    assert all(s.context.trace_id == server[0].context.trace_id for s in db_spans)
    assert server[0].resource.attributes["service.name"] == "shop"


class _Receiver(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(body)
        _Receiver.requests.append((self.path, self.headers.get("Content-Type"), msg))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_otlp_http_export_reaches_a_real_receiver(client, seller):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces")
        processor = BatchSpanProcessor(exporter)
        observability.add_span_processor(processor)
        assert client.get(f"/api/products/{seller[3]['id']}").status_code == 200
        assert processor.force_flush(10_000)
        path, ctype, msg = _Receiver.requests[-1]
        assert path == "/v1/traces" and ctype == "application/x-protobuf"
        resource = {a.key: a.value.string_value for a in msg.resource_spans[0].resource.attributes}
        spans = [s for _, _, m in _Receiver.requests for rs in m.resource_spans for ss in rs.scope_spans
                 for s in ss.spans]
        assert resource["service.name"] == "shop" and "GET /api/products/<product_id>" in {s.name for s in spans}
        # The routed call's log fields travel as a span event: what Jaeger shows as the span's logs.
        routed = next(s for s in spans if s.name == "ProductRepository.get_by_id")
        (event,) = [e for e in routed.events if e.name == "read"]
        fields = {a.key: a.value for a in event.attributes}
        assert fields["operation"].string_value == "ProductRepository.get_by_id"
        assert fields["key"].string_value == f"product_id={seller[3]['id']}"
        assert fields["stores"].string_value in ("mysql", "dynamodb", "mysql+dynamodb")
        processor.shutdown()
    finally:
        server.shutdown()


def test_serving_continues_with_no_collector(client, seller):
    # Nothing listens on port 9: exports fail in the background thread, never in the request.
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces", timeout=1)
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=50)
    observability.add_span_processor(processor)
    try:
        for _ in range(5):
            assert client.get(f"/api/products/{seller[3]['id']}").status_code == 200
    finally:
        processor.shutdown()


def test_json_logs_carry_trace_and_span_ids():
    import io

    from opentelemetry import trace

    stream = io.StringIO()
    handler = observability.json_handler(stream)
    logger = logging.getLogger("shop.test")
    logger.addHandler(handler)
    try:
        with trace.get_tracer("test").start_as_current_span("work") as span:
            logger.warning("hello", extra={"order_id": 7})
            ctx = span.get_span_context()
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "hello" and record["level"] == "WARNING" and record["order_id"] == 7
    assert record["trace_id"] == format(ctx.trace_id, "032x") and record["span_id"] == format(ctx.span_id, "016x")


@pytest.fixture
def log_output():
    """The application's own log path (root QueueHandler, then the QueueListener's JSON
    handler on its thread), writing into a buffer for the test's duration."""
    import io

    listener = observability.log_listener()
    assert listener is not None and any(isinstance(h, QueueHandler) for h in logging.getLogger().handlers)
    (handler,) = listener.handlers
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    yield buffer
    handler.setStream(old)


def read_lines(buffer, predicate, timeout=10.0):
    """Poll until the listener thread has written a line matching `predicate`."""
    def matching():
        lines = [json.loads(x) for x in buffer.getvalue().splitlines()]
        return lines if any(predicate(x) for x in lines) else None
    lines = poll(matching, timeout)
    assert lines, f"no matching line within {timeout}s: {buffer.getvalue()[-2000:]}"
    return lines


def test_log_lines_through_the_queue_carry_the_ids_of_their_span(client, seller, memory, log_output):
    from opentelemetry import trace

    with trace.get_tracer("test").start_as_current_span("work") as span:
        logging.getLogger("shop.test").warning("inside a span", extra={"order_id": 7})
        ctx = span.get_span_context()
    logging.getLogger("shop.test").warning("outside any span")
    memory.clear()
    assert client.get(f"/api/products/{seller[3]['id']}").status_code == 200
    routed = next(s for s in memory.get_finished_spans() if s.name == "ProductRepository.get_by_id")
    trace_id = format(routed.context.trace_id, "032x")
    # (Lines of the fixtures' earlier requests may still be in the queue: this request's is the one.)
    lines = read_lines(log_output, lambda x: x.get("operation") == "ProductRepository.get_by_id"
                       and x.get("trace_id") == trace_id)
    inside = next(x for x in lines if x["message"] == "inside a span")
    assert inside["trace_id"] == format(ctx.trace_id, "032x") and inside["span_id"] == format(ctx.span_id, "016x")
    assert inside["order_id"] == 7 and inside["level"] == "WARNING"
    outside = next(x for x in lines if x["message"] == "outside any span")
    assert outside["trace_id"] is None and outside["span_id"] is None
    # A routed read inside a request: the ids of the routed call's span, in the request's trace.
    (read,) = [x for x in lines if x.get("operation") == "ProductRepository.get_by_id" and x["trace_id"] == trace_id]
    assert read["span_id"] == format(routed.context.span_id, "016x") and read["key"] == f"product_id={seller[3]['id']}"


# Runs a real `flask --app shop ...` command, then prints how its spans were exported.
CLI_PROBE = """
import json, sys
from flask.cli import main
import observability
sys.argv = ["flask", "--app", "shop", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "export": observability.active_export_settings()}))
"""


def run_cli(settings, *args, **env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    base.update(MYSQL_DATABASE=settings.mysql_database, DYNAMODB_TABLE_PREFIX=settings.dynamodb_table_prefix,
                OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", **env)  # nothing listens on port 9
    done = subprocess.run([sys.executable, "-c", CLI_PROBE, *args], env=base, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] in (0, None), done.stderr
    return result["export"], done.stderr


def test_cli_commands_do_not_wait_for_an_absent_collector(settings):
    export, stderr = run_cli(settings, "init-db")
    assert export == {"exporter": "none", "endpoint": None, "timeout_s": None}  # nothing to flush at exit
    assert "Failed to export" not in stderr and "Transient error" not in stderr
    # Asked for explicitly, a command exports, but gives up on a dead collector within a second.
    export, _ = run_cli(settings, "init-db", OTEL_TRACES_EXPORTER="otlp")
    assert export == {"exporter": "otlp", "endpoint": "http://127.0.0.1:9/v1/traces",
                      "timeout_s": observability.CLI_EXPORT_TIMEOUT_S} and observability.CLI_EXPORT_TIMEOUT_S <= 1


def test_a_server_exports_over_otlp_by_default(monkeypatch):
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    assert observability.export_settings() == {"exporter": "otlp", "endpoint": "http://localhost:4318/v1/traces",
                                               "timeout_s": 10.0}
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert observability.export_settings()["exporter"] == "none"


class _StartedHere(SpanProcessor):
    """Spans started on one thread: the test client serves a request on the caller's, while
    other tests' applications may still finish background work (shadow comparisons, a phase
    read) into the same provider at any moment."""

    def __init__(self):
        self.thread, self.ids = threading.get_ident(), []

    def on_start(self, span, parent_context=None):
        if threading.get_ident() == self.thread:
            self.ids.append(span.context.span_id)


def test_metrics_scrapes_are_not_traced(client, memory):
    here = _StartedHere()
    observability.add_span_processor(here)
    memory.clear()
    for path in ("/metrics", "/metrics?name[]=shop_repairs_pending"):
        r = client.get(path)
        assert r.status_code == 200 and "shop_repairs_pending " in r.get_data(as_text=True)
    mine = [s.name for s in memory.get_finished_spans() if s.context.span_id in here.ids]
    assert mine == []  # neither the request nor its repair-count query
    here.thread = None  # the processor stays registered: it records nothing more
    assert client.get("/api/health").status_code == 200
    assert "GET /api/health" in [s.name for s in memory.get_finished_spans()]  # other requests still are


def test_with_no_collector_the_exporter_warns_once_then_recovers(caplog):
    """The server's exporter against a port where nothing listens: one warning, however many
    batches; the exporter's own retry warnings and errors held back; once a collector answers
    on that port, one line says so and spans go through."""
    from opentelemetry.sdk.trace import TracerProvider

    from .ddb_local import free_port
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    exporter = observability._exporter({"exporter": "otlp", "endpoint": endpoint, "timeout_s": 0.5})
    exporter.probe_s = 0  # every batch tries: the quiet comes from saying it once, not from trying less
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("one batch") as span:
        pass
    with caplog.at_level(logging.DEBUG):
        for _ in range(4):
            assert exporter.export([span]).name == "FAILURE"
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in lines] == [
        f"no trace collector answers at {endpoint}: spans are dropped (said once; tried again every 0 s)"], lines
    assert lines[0].cause  # the exporter's first word on it, kept on the one line
    caplog.clear()
    server = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with caplog.at_level(logging.DEBUG):
            assert exporter.export([span]).name == "SUCCESS"
            assert exporter.export([span]).name == "SUCCESS"
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
            f"the trace collector at {endpoint} answers again: spans are exported"]
    finally:
        server.shutdown()
        server.server_close()


def test_while_the_collector_stays_down_batches_are_dropped_without_waiting():
    from opentelemetry.sdk.trace import TracerProvider

    from .ddb_local import free_port
    exporter = observability._exporter({"exporter": "otlp", "endpoint": f"http://127.0.0.1:{free_port()}/v1/traces",
                                        "timeout_s": 0.5})
    with TracerProvider().get_tracer("test").start_as_current_span("s") as span:
        pass
    attempts = []
    inner = exporter.inner.export
    exporter.inner.export = lambda spans: attempts.append(1) or inner(spans)  # counts the tries, sends for real
    for _ in range(5):
        exporter.export([span])
    assert len(attempts) == 1  # the others were dropped at once, within the probe interval
