"""Spans, logs and metrics of routed calls, asserted with the SDK's in-memory exporter."""
from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import observability
from shop.aspects import PRESETS, use_flags
from shop.domain import NewProduct, NewUser
from shop.repositories.dynamodb import keys
from shop.repositories.dynamodb.client import encode

from .conftest import unique

DUAL_READ = PRESETS[2].flags


@pytest.fixture(scope="module")
def memory():
    exporter = InMemorySpanExporter()
    observability.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def product(app):
    routed = app.extensions["shop"].repos
    with use_flags(DUAL_READ):
        seller = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        cat = routed.categories.create(unique("C "), None)
        return routed, routed.products.create(seller.id, NewProduct(category_id=cat.id, name="Lamp",
                                                                    price=Decimal("9.50"), inventory_quantity=2))


def by_name(spans, name):
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def descendants(spans, root):
    ids, out = {root.context.span_id}, []
    for s in sorted(spans, key=lambda s: s.start_time):
        if s.parent is not None and s.parent.span_id in ids:
            ids.add(s.context.span_id)
            out.append(s)
    return out


def test_dual_read_span_tree(product, memory):
    routed, p = product
    memory.clear()
    with use_flags(DUAL_READ):
        routed.products.get_by_id(p.id)
    spans = memory.get_finished_spans()
    top = by_name(spans, "ProductRepository.get_by_id")
    assert top.kind == SpanKind.INTERNAL
    assert top.attributes["shop.flags"] == "READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"
    assert top.attributes["shop.scenario"] == "Dual write, dual read"
    assert top.attributes["shop.operation.kind"] == "read" and top.attributes["shop.key.product_id"] == str(p.id)
    assert top.attributes["shop.compare.outcome"] == "match"
    mysql = by_name(spans, "mysql ProductRepository.get_by_id")
    ddb = by_name(spans, "dynamodb ProductRepository.get_by_id")
    for child in (mysql, ddb):
        assert child.parent.span_id == top.context.span_id  # the pool thread got the context
    # a match is on the routed span; only other outcomes get a compare span of their own
    assert not [s for s in spans if s.name.startswith("compare ")]
    under_mysql = descendants(spans, mysql)
    under_ddb = descendants(spans, ddb)
    assert under_mysql and all("dynamodb" not in s.name.lower() for s in under_mysql)
    assert [s.attributes.get("rpc.method") for s in under_ddb] == ["GetItem"]  # one request, names copied in


def test_mismatch_outcome_names_the_attributes(product, memory, dynamo):
    from shop.aspects import DualReadMismatch
    routed, p = product
    dynamo.client.update_item(TableName=dynamo.table("catalog"), Key=encode(keys.product(p.id)),
                              UpdateExpression="SET price = :v", ExpressionAttributeValues=encode({":v": Decimal(1)}))
    memory.clear()
    with use_flags(DUAL_READ), pytest.raises(DualReadMismatch):
        routed.products.get_by_id(p.id)
    compare = by_name(memory.get_finished_spans(), "compare ProductRepository.get_by_id")
    assert compare.attributes["shop.compare.outcome"] == "mismatch"
    assert tuple(compare.attributes["shop.compare.mismatched_attributes"]) == ("price",)
    assert compare.status.status_code == StatusCode.ERROR
    top = by_name(memory.get_finished_spans(), "ProductRepository.get_by_id")
    assert top.status.status_code == StatusCode.ERROR and "exception" in [e.name for e in top.events]


def test_dual_write_spans_and_errors_recorded_with_their_type(product, memory, app):
    routed, p = product
    memory.clear()
    with use_flags(DUAL_READ):
        routed.products.set_inventory(p.id, 7)
        with pytest.raises(Exception):
            routed.categories.create("x", 2_000_000_000)  # MySQL refuses: DynamoDB is not called
    spans = memory.get_finished_spans()
    write = by_name(spans, "ProductRepository.set_inventory")
    assert write.attributes["shop.operation.kind"] == "write"
    assert [s.name for s in spans if s.parent and s.parent.span_id == write.context.span_id] == [
        "mysql ProductRepository.set_inventory", "dynamodb ProductRepository.set_inventory"]
    failed = by_name(spans, "mysql CategoryRepository.create")
    assert failed.attributes["error.type"] == "NotFoundError"
    assert not [s for s in spans if s.name == "dynamodb CategoryRepository.create"]


def test_one_json_log_line_per_read_and_comparison_with_trace_ids(product, memory):
    routed, p = product
    stream = io.StringIO()
    handler = observability.json_handler(stream)
    logger = logging.getLogger("shop.aspects")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        memory.clear()
        with use_flags(DUAL_READ):
            routed.products.get_by_id(p.id)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    top = by_name(memory.get_finished_spans(), "ProductRepository.get_by_id")
    assert sorted((x["event"], x.get("stores", "-")) for x in lines) == [
        ("compare", "-"), ("read", "mysql+dynamodb")]
    assert all(x["trace_id"] == format(top.context.trace_id, "032x") for x in lines)
    compare = next(x for x in lines if x["event"] == "compare")
    assert compare["outcome"] == "match" and compare["key"] == f"product_id={p.id}"
    assert "Lamp" not in stream.getvalue() and "9.50" not in stream.getvalue()  # keys and names, no records


def test_metrics_are_readable_in_process(product, app):
    from prometheus_client import generate_latest

    routed, p = product
    with use_flags(DUAL_READ):
        routed.products.get_by_id(p.id)
    stats = app.extensions["shop"].runtime.stats
    text = generate_latest(stats.registry).decode()
    assert 'shop_store_duration_seconds_count{kind="read",operation="ProductRepository.get_by_id",store="dynamodb"}' \
        in text and 'shop_compare_outcomes_total{operation="ProductRepository.get_by_id",outcome="match"}' in text
    health = stats.snapshot()
    assert health["stores"]["dynamodb"]["read"]["calls"] >= 1 and health["comparisons"]["match"] >= 1
    assert health["stores"]["mysql"]["read"]["p99_ms"] >= health["stores"]["mysql"]["read"]["p50_ms"] > 0
    assert health["operations"]["ProductRepository.get_by_id"]["dynamodb"]["calls"] >= 1


def events(span, name):
    return [dict(e.attributes) for e in span.events if e.name == name]


def test_routed_calls_and_comparisons_add_span_events_with_the_log_fields(product, memory):
    routed, p = product
    memory.clear()
    with use_flags(DUAL_READ):
        routed.products.get_by_id(p.id)
        routed.products.set_inventory(p.id, 3)
    spans = memory.get_finished_spans()
    (read,) = events(by_name(spans, "ProductRepository.get_by_id"), "read")
    assert read["event"] == "read" and read["operation"] == "ProductRepository.get_by_id"
    assert read["flags"] == str(DUAL_READ) and read["stores"] == "mysql+dynamodb"
    assert read["key"] == f"product_id={p.id}" and read["duration_ms"] > 0 and "error_type" not in read
    # A match has no compare span of its own: its event is on the routed span.
    (compared,) = events(by_name(spans, "ProductRepository.get_by_id"), "dual read compared")
    assert compared == {"event": "compare", "operation": "ProductRepository.get_by_id", "outcome": "match",
                        "attributes": (), "key": f"product_id={p.id}"}
    (write,) = events(by_name(spans, "ProductRepository.set_inventory"), "write")
    assert write["stores"] == "mysql+dynamodb" and write["key"] == f"product_id={p.id}"
    # A duration may read 9.50x ms: it is a timing, not the record's price.
    values = [str(v) for s in spans for e in s.events for k, v in e.attributes.items() if k != "duration_ms"]
    assert not [v for v in values if "Lamp" in v or "9.50" in v]  # keys and names, never records


def test_a_recorded_repair_is_an_event_on_the_write_span(settings, memory):
    from dataclasses import replace

    from shop import create_app

    app = create_app(replace(settings, breaker_threshold=1))
    runtime = app.extensions["shop"].runtime
    try:
        runtime.breaker.failure()  # DynamoDB "was failing": the secondary write goes to the repair log
        memory.clear()
        with use_flags(PRESETS[1].flags):
            category = app.extensions["shop"].repos.categories.create(unique("C "), None)
        write = by_name(memory.get_finished_spans(), "CategoryRepository.create")
        (recorded,) = events(write, "secondary write recorded for repair")
        assert recorded == {"event": "repair", "action": "recorded", "entity": "category",
                            "entity_id": str(category.id), "operation": "CategoryRepository.create",
                            "error_type": "circuit open"}
        assert write.attributes["shop.repair.recorded"] == 1
    finally:
        runtime.close()


def test_events_and_log_lines_mask_secrets(memory, caplog):
    from opentelemetry import trace

    from observability.events import emit

    memory.clear()
    with caplog.at_level(logging.INFO, "shop.test"):
        with trace.get_tracer("test").start_as_current_span("work"):
            emit(logging.getLogger("shop.test"), logging.INFO, "signed in",
                 {"event": "auth", "user": "ann", "password": "hunter2", "api_token": "t0k3n", "error": None})
    (event,) = events(by_name(memory.get_finished_spans(), "work"), "signed in")
    assert event == {"event": "auth", "user": "ann", "password": "***", "api_token": "***"}
    record = next(r for r in caplog.records if r.getMessage() == "signed in")
    assert (record.password, record.api_token, record.user) == ("***", "***", "ann")
    assert record.pathname.endswith("test_aspects_telemetry.py")  # the caller's line, not the helper's


def test_percentiles_are_estimated_from_the_buckets_as_prometheus_does():
    from shop.aspects.stats import quantile

    cumulative = [(0.001, 50.0), (0.01, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, cumulative) == pytest.approx(0.001)
    assert quantile(0.99, cumulative) == pytest.approx(0.001 + 0.009 * 49 / 50)
    assert quantile(0.99, [(0.001, 0.0), (float("inf"), 4.0)]) == 0.001  # beyond the last bound: its edge
    assert quantile(0.5, [(0.001, 0.0), (float("inf"), 0.0)]) == 0.0 and quantile(0.5, []) == 0.0
