"""A stalled DynamoDB (a loopback proxy that accepts connections and forwards nothing) costs a
request nothing where DynamoDB is not needed, and a bounded wait, end to end, where it is.

No time is measured here (bench/ and `make reliability` do that): each test proves it by what
happened in order. In phase 1 the request's thread never sends DynamoDB anything; in phase 3,
once a request's first wait on DynamoDB has spent its budget, its remaining dual reads leave
DynamoDB out; in phase 4 MySQL answers for DynamoDB.
"""
from __future__ import annotations

import re
import threading
from dataclasses import replace
from urllib.parse import urlparse

import pytest

from reliability.proxy import Proxy
from shop import create_app
from shop.aspects import PRESETS
from shop.prepare import prepare

from .conftest import TEST_DB, Api, poll


@pytest.fixture(params=[1, 3, 4], ids=lambda n: f"phase-{n}")
def stalled(request, settings):
    """An app of the given phase whose DynamoDB is reached through a proxy that can stall."""
    proxy = Proxy(urlparse(settings.dynamodb_endpoint).port)
    app = create_app(replace(settings, mysql_database=TEST_DB + "_faults", dynamodb_table_prefix="stall",
                             dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}",
                             shop_flags=str(PRESETS[request.param - 1].flags), breaker_threshold=1000,
                             dual_read_timeout_ms=600, dual_write_timeout_ms=400, phase_refresh_ms=200))
    prepare(app, empty=True)
    sent = []  # threads that sent DynamoDB a request
    app.extensions["shop"].dynamo.client.meta.events.register(
        "before-send.dynamodb", lambda **kw: sent.append(threading.current_thread()))
    yield app, proxy, sent, request.param
    proxy.cut = True
    proxy.close()
    app.extensions["shop"].runtime.close()
    app.extensions["shop"].db.close()


def _shop(app):
    api = Api(app.test_client())
    seller, token = api.register(seller=True)
    product = api.product(token, api.category(token)["id"], inventory_quantity=50)
    buyer, buyer_token = api.register()
    return api, product, buyer, buyer_token


def test_a_request_waits_on_a_stalled_dynamodb_only_as_long_as_its_phase_needs(stalled):
    app, proxy, sent, phase = stalled
    state = app.extensions["shop"]
    api, product, buyer, token = _shop(app)
    before = state.runtime.stats.snapshot()
    proxy.stall = True
    del sent[:]
    here = threading.current_thread()
    add = api.call("POST", "/api/cart/items", token, {"productId": product["id"], "quantity": 2})
    listing = api.call("GET", "/api/products?limit=5")
    one = api.call("GET", f"/api/products/{product['id']}")
    assert (add.status_code, listing.status_code, one.status_code) == (201, 200, 200), add.get_json()
    assert one.get_json()["data"]["product"]["name"] == product["name"]  # MySQL's answer where DynamoDB gave none
    after = state.runtime.stats.snapshot()
    if phase == 1:
        assert here not in sent  # the requests' own thread never asked DynamoDB anything
        assert after["stores"].get("dynamodb") == before["stores"].get("dynamodb")
    if phase == 3:
        # The cart add reads the product and the line, writes, reads the cart: its first wait on
        # DynamoDB spent the read budget, so its later dual reads did not ask DynamoDB at all.
        outcomes = {k: after["comparisons"].get(k, 0) - before["comparisons"].get(k, 0)
                    for k in ("timeout", "skipped")}
        assert outcomes["timeout"] >= 1 and outcomes["skipped"] >= 1, outcomes
        assert state.runtime.journal.is_pending("cart", buyer["id"])  # the write's DynamoDB half: recorded
    if phase == 4:
        assert sum(s.value for f in state.runtime.stats.registry.collect() if f.name == "shop_read_fallbacks"
                   for s in f.samples if s.name.endswith("_total")) >= 2
    proxy.stall = False


def test_the_phase_keeps_being_read_while_dynamodb_stalls(stalled):
    app, proxy, sent, phase = stalled
    view = app.extensions["shop"].runtime.phase
    view.current()
    proxy.stall = True
    poll(lambda: proxy.held, 10, "a stalled DynamoDB read")
    read_at = view.age_s()
    poll(lambda: view.age_s() is not None and view.age_s() < read_at, 10, "a read of the phase from MySQL")
    assert proxy.stall and view.current().flags == PRESETS[phase - 1].flags
    proxy.stall = False


def test_a_read_on_a_requests_own_thread_makes_one_bounded_attempt(settings):
    """Nothing can abandon a call on a request's own thread (the inline dual reads, phase 4's
    read while DynamoDB answers well): its client makes one attempt, not botocore's 4 x 5 s."""
    from shop.repositories.dynamodb import Dynamo
    from shop.repositories.dynamodb.client import impatient
    from shop.repositories.dynamodb.errors import DynamoDBError

    proxy = Proxy(urlparse(settings.dynamodb_endpoint).port)
    try:
        dynamo = Dynamo(replace(settings, dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}", dual_read_timeout_ms=300,
                                dynamodb_max_attempts=4, dynamodb_read_timeout=5))
        proxy.stall = True
        with impatient():
            attempts = []
            dynamo.client.meta.events.register("before-send.dynamodb", lambda **kw: attempts.append(1))
            with pytest.raises(DynamoDBError):
                dynamo.get(dynamo.table("users"), {"PK": "USER#1", "SK": "#META"})
        assert len(attempts) == 1 and dynamo.client is not dynamo._impatient_client
    finally:
        proxy.cut = True
        proxy.close()


def test_a_call_that_leaves_dynamodb_out_never_takes_the_breakers_probe(app, api):
    """The journey's phase 3 found the circuit open for good after an outage: a dual read whose
    request had spent its budget was granted the half-open probe, never asked DynamoDB, and the
    probe stayed taken, so no later call could close the circuit."""
    from shop.aspects import budget, use_flags
    state = app.extensions["shop"]
    breaker = state.runtime.breaker
    _, token = api.register(seller=True)
    product = api.product(token, api.category(token)["id"])
    clock = {"now": 0.0}
    breaker.clock = lambda: clock["now"]
    try:
        for _ in range(breaker.threshold):
            breaker.failure()
        clock["now"] += breaker.cooldown + 1  # a probe is due
        spent = budget.begin(0, 0)
        try:
            with use_flags(PRESETS[2].flags):
                state.repos.products.get_by_id(product["id"])  # served by MySQL, DynamoDB left out
                state.repos.products.set_inventory(product["id"], 3)  # recorded for repair, not tried
        finally:
            budget.end(spent)
        assert breaker.allow()  # the probe is still there for the next call that asks DynamoDB
    finally:
        breaker.clock = __import__("time").monotonic
        breaker.success()


def test_a_browsers_trial_in_phase_5_waits_for_dynamodb_its_only_store(settings):
    """In phase 5 DynamoDB is the only store written: a browser trying dual reads there gets
    DynamoDB's answer however slow it is, as any phase 5 read; the dual-read limit is for the
    store a read can do without (the journey's phase 5 once answered such a trial 503)."""
    proxy = Proxy(urlparse(settings.dynamodb_endpoint).port)
    app = create_app(replace(settings, mysql_database=TEST_DB + "_faults", dynamodb_table_prefix="stall5",
                             dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}", shop_flags=str(PRESETS[1].flags),
                             dual_read_timeout_ms=150))
    try:
        prepare(app, empty=True)
        api, product, _, _ = _shop(app)  # dual written, so both stores hold it
        app.extensions["shop"].runtime.close()
        app = create_app(replace(app.extensions["shop"].settings, shop_flags=str(PRESETS[4].flags)))  # phase 5
        browser = app.test_client()
        page = browser.get("/flags").get_data(as_text=True)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert browser.post("/flags/preset/dual-read", data={"csrf_token": csrf, "confirm_risk": "yes"}).status_code == 303
        proxy.latency = 0.4  # every DynamoDB exchange now takes longer than the dual-read limit
        answer = browser.get(f"/api/products/{product['id']}")
        assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
        assert answer.get_json()["data"]["product"]["name"] == product["name"]
        assert app.extensions["shop"].runtime.stats.snapshot()["trial_comparisons"] == {"match": 1}
    finally:
        proxy.cut = True
        proxy.close()
        app.extensions["shop"].runtime.close()
