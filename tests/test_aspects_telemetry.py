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
    assert top.status.status_code == StatusCode.ERROR and top.events[0].name == "exception"


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
    routed, p = product
    with use_flags(DUAL_READ):
        routed.products.get_by_id(p.id)
    data = observability.metric_reader().get_metrics_data()
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"shop.store.duration", "shop.compare.outcomes"} <= names
    health = app.extensions["shop"].runtime.stats.snapshot()
    assert health["stores"]["dynamodb"]["read"]["calls"] >= 1 and health["comparisons"]["match"] >= 1
    assert health["stores"]["mysql"]["read"]["p99_ms"] >= health["stores"]["mysql"]["read"]["p50_ms"] > 0
