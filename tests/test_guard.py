"""The guard (shop.migration.guard): when an entity's reads break a limit it takes them one step
back by itself, exactly once across workers, audited with the evidence; never forward.

Two applications over the same stores stand for two workers. The breaches are made for real: a
DynamoDB item changed behind the application (mismatches), and a DynamoDB that stalls (a
loopback proxy that forwards nothing). Nothing waits on time: the guard is asked to look, or
polled for with a timeout.
"""
from __future__ import annotations

import threading
from urllib.parse import urlparse

import pytest

from reliability.proxy import Proxy
from shop.aspects.pace import Recent
from shop.repositories.dynamodb import keys
from shop.repositories.dynamodb.client import encode

from .conftest import in_phase_3, journey_apps, poll

GUARD = dict(guard_enabled=True, guard_min_samples=8, guard_interval_ms=100, limit_mismatch_rate=0.01,
             dual_read_mode="report", dual_read_recheck_ms=0, phase_refresh_ms=100, gate_min_comparisons=0)


def _apps(n=2, **overrides):
    return journey_apps(n, **{**GUARD, **overrides})


def _close(apps):
    for app in apps:
        app.extensions["shop"].close()


def _shop(app):
    return in_phase_3(app, "Kettle")


def _tamper(app, product_id):
    dynamo = app.extensions["shop"].dynamo
    dynamo.client.update_item(TableName=dynamo.table("catalog"), Key=encode(keys.product(product_id)),
                              UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                              ExpressionAttributeValues=encode({":n": "Changed behind the app"}))


def _guard_entries(control):
    return [e for e in control.store.history(50) if e["who"] == "guard"]


def test_injected_mismatches_make_exactly_one_step_back_across_workers():
    apps = _apps(2, guard_interval_ms=3_600_000)  # the workers' own threads asleep: the test makes them look
    try:
        api, control, product = _shop(apps[0])
        assert control.expose(["product"], "pytest", rollout=50, force=True, reason="canary at 50").ok
        _tamper(apps[0], product["id"])
        for _ in range(10):
            assert api.call("GET", f"/api/products/{product['id']}").status_code == 200  # reported, not raised
        apps[0].extensions["shop"].runtime.evidence.flush()
        for app in apps:
            app.extensions["shop"].runtime.phase.refresh()
        # Both workers see the breach at once; the compare-and-set lets one step through.
        barrier, steps = threading.Barrier(2), []

        def look(app):
            barrier.wait()
            steps.append(app.extensions["shop"].guard.check())
        threads = [threading.Thread(target=look, args=(app,)) for app in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        taken = [s for s in steps if s]
        assert len(taken) == 1, steps
        assert taken[0]["entity"] == "product" and taken[0]["limits"] == ["mismatch_rate"]
        state = control.view.refresh()
        assert state.phase == 3 and state.doc["entities"]["product"]["read_rollout_percent"] == 25
        # The document says why, not the operator's reason of the step before (phase status showed it).
        assert (state.doc["changed_by"], state.doc["reason"]) == ("guard", "product broke a limit at 50% of readers")
        (entry,) = _guard_entries(control)
        assert entry["outcome"] == "stepped back" and "50% -> 25%" in entry["reason"]
        assert any(g["name"] == "mismatch_rate" and "mismatches of" in g["detail"] for g in entry["gates"])
        # The evidence that made the step cannot make another: the step restarted the window.
        for app in apps:
            app.extensions["shop"].runtime.phase.refresh()
            assert app.extensions["shop"].guard.check() is None
        assert len(_guard_entries(control)) == 1
        metric = sum(s.value for app in apps for f in app.extensions["shop"].runtime.stats.registry.collect()
                     for s in f.samples if s.name == "shop_guard_steps_total")
        assert metric == 1
    finally:
        _close(apps)


def test_a_serving_worker_steps_back_by_itself_and_never_forward():
    (app,) = _apps(1)
    try:
        api, control, product = _shop(app)
        assert app.extensions["shop"].guard.check() is None  # nothing broken: nothing moves
        _tamper(app, product["id"])
        for _ in range(10):
            api.call("GET", f"/api/products/{product['id']}")
        # The worker's own thread (started by its first request) keeps the evidence and looks.
        assert poll(lambda: control.view.refresh().phase == 2, timeout=20)
        (entry,) = _guard_entries(control)
        assert entry["from"] == "3" and entry["to"] == "2" and "phase 3 -> 2" in entry["reason"]
        # In phase 2 (nothing exposed) it never moves, and never forward, however good things look.
        assert app.extensions["shop"].guard.check() is None
        assert control.view.refresh().phase == 2
    finally:
        _close([app])


@pytest.fixture
def stalled(settings):
    proxy = Proxy(urlparse(settings.dynamodb_endpoint).port)
    (app,) = _apps(1, dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}", dual_read_timeout_ms=300,
                   dual_write_timeout_ms=300, guard_min_samples=5, breaker_threshold=1000,
                   guard_interval_ms=3_600_000)
    yield app, proxy
    proxy.cut = True
    proxy.close()
    _close([app])


def test_a_stalled_dynamodb_in_phase_4_steps_reads_back_to_3(stalled):
    app, proxy = stalled
    api, control, product = _shop(app)
    assert control.set(4, "pytest", force=True, reason="guard tests").ok
    app.extensions["shop"].runtime.phase.refresh()
    proxy.stall = True
    try:
        for _ in range(6):  # each answered by MySQL once DynamoDB's time is up
            answer = api.call("GET", f"/api/products/{product['id']}")
            assert answer.status_code == 200 and answer.get_json()["data"]["product"]["name"] == "Kettle"
        app.extensions["shop"].runtime.evidence.flush()
        step = app.extensions["shop"].guard.check()
    finally:
        proxy.stall = False
    assert step is not None and step["to"] == "3" and "error_rate" in step["limits"], step
    state = control.view.refresh()
    assert state.phase == 3
    rollouts = {e: p["read_rollout_percent"] for e, p in state.doc["entities"].items()}
    assert rollouts["product"] == 50 and all(v == 100 for e, v in rollouts.items() if e != "product"), rollouts
    (entry,) = _guard_entries(control)
    assert "DynamoDB failed" in entry["reason"]


def _timed_dynamodb_reads(app, operation):
    return sum(s.value for f in app.extensions["shop"].runtime.stats.registry.collect() for s in f.samples
               if s.name == "shop_store_duration_seconds_count" and s.labels.get("store") == "dynamodb"
               and s.labels.get("operation") == operation)


@pytest.mark.parametrize("thread", ["pool", "caller"])
def test_a_read_given_up_at_its_limit_counts_once_as_failed_however_late_its_answer(stalled, thread):
    """A DynamoDB read abandoned at the limit on the pool is one failed read in the evidence,
    not a failure now and a success when its answer comes (counted twice, late answers would
    dilute the error rate the guard and the gates judge). On the request's thread the client
    itself gives up at the limit: one failure too (tests/test_read_tally.py: an answer that
    came late there all the same)."""
    app, proxy = stalled
    api, control, product = _shop(app)
    assert control.set(4, "pytest", force=True, reason="late answers").ok
    runtime = app.extensions["shop"].runtime
    state = runtime.phase.refresh()
    pace = runtime.pace("ProductRepository.get_by_id")
    for _ in range(Recent.WINDOW):  # recent answers decide the thread: all fast, the request's own
        pace.dynamodb.add(0.001 if thread == "caller" else 10.0)
    runtime.evidence.flush()
    timed = _timed_dynamodb_reads(app, "ProductRepository.get_by_id")
    proxy.latency = 0.8  # every DynamoDB answer comes after the 300 ms limit
    try:
        answer = api.call("GET", f"/api/products/{product['id']}")
        assert answer.status_code == 200 and answer.get_json()["data"]["product"]["name"] == "Kettle"  # MySQL's
        # The late answer arrives (on the pool, after the request) and is timed like any other.
        assert poll(lambda: _timed_dynamodb_reads(app, "ProductRepository.get_by_id") > timed, timeout=20)
    finally:
        proxy.latency = 0.0
    runtime.evidence.flush()
    ev = runtime.evidence.window(*state.step_of("product"))["product"]
    assert ev.n("read.dynamodb.ok") == 0 and ev.n("read.dynamodb.error") >= 1, dict(ev.counts)
    assert ev.error_rate("dynamodb") == 1.0 and ev.fallbacks == ev.n("read.dynamodb.error")


def test_phase_5_keeps_no_evidence_nothing_could_judge_or_store():
    """In phase 5 nothing judges reads and MySQL, where evidence is kept, may be retired:
    counting there would pile up in memory, retried every second."""
    (app,) = _apps(1)
    try:
        api, control, product = _shop(app)
        runtime = app.extensions["shop"].runtime
        for target in (4, 5):
            assert control.set(target, "pytest", force=True, reason="evidence in phase 5").ok
        assert runtime.phase.refresh().phase == 5
        runtime.evidence.flush()
        answer = api.call("GET", f"/api/products/{product['id']}")
        assert answer.status_code == 200 and answer.get_json()["data"]["product"]["name"] == "Kettle"
        assert runtime.evidence.flush() == 0
        assert _timed_dynamodb_reads(app, "ProductRepository.get_by_id") >= 1  # /metrics still saw the read
    finally:
        _close([app])
