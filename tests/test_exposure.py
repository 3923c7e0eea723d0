"""Gradual exposure (shop.aspects.exposure): sampled comparisons decided once per request, shadow
comparisons off the request path, read canaries sticky per reader, and the evidence gates.

Nothing here measures time: the shadow test proves the order of events with a DynamoDB whose
reads wait on the test (a botocore hook), and the percentages are checked within binomial bounds
wide enough never to fail by chance (more than five standard deviations).
"""
from __future__ import annotations

import threading

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import observability
from shop.aspects import exposure
from shop.repositories.dynamodb import keys
from shop.repositories.dynamodb.client import encode, impatient

from .conftest import in_phase_3, journey_apps, make_settings, poll


@pytest.fixture(scope="module")
def shop():
    """An app in a stored phase 3 over its own stores, with a seller's product."""
    (app,) = journey_apps(1, phase_refresh_ms=100, gate_min_comparisons=20, guard_min_samples=10,
                          shadow_workers=1, shadow_queue=0)
    api, control, product = in_phase_3(app)
    yield app, api, control, product
    app.extensions["shop"].close()  # its watch too: it would flush evidence into the next module's journey


@pytest.fixture
def fresh(shop):
    """Each test starts from full inline comparisons and no canary."""
    app, api, control, product = shop
    assert control.expose(["user", "category", "product", "cart", "order"], "pytest", compare_percent=100,
                          compare_mode="inline", rollout=0).ok
    assert app.extensions["shop"].runtime.shadow.drain(10)
    return shop


def _compared(runtime) -> int:
    return sum(runtime.stats.snapshot()["comparisons"].values())


def _entity_metric(runtime, metric, **labels) -> float:
    return sum(s.value for f in runtime.stats.registry.collect() for s in f.samples
               if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()))


def test_sampling_compares_its_share_of_requests(fresh):
    app, api, control, product = fresh
    runtime = app.extensions["shop"].runtime
    assert control.expose(["product"], "pytest", compare_percent=30).ok
    n, before = 400, _compared(runtime)
    for _ in range(n):
        assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
    compared = _compared(runtime) - before
    # Binomial(400, 0.3): mean 120, sd 9.2; these bounds are 5.4 sd either way.
    assert 70 <= compared <= 170, compared


def test_the_decision_is_made_once_per_request(fresh):
    app, api, control, product = fresh
    state = app.extensions["shop"]
    assert control.expose(["product", "user"], "pytest", compare_percent=50).ok
    seller_id = product["seller_id"]
    outcomes = []
    for _ in range(200):
        token = exposure.begin(lambda: None)  # what a request's first hook does
        try:
            before = _compared(state.runtime)
            state.repos.products.get_by_id(product["id"])
            state.repos.users.get_by_id(seller_id)
            state.repos.products.get_by_id(product["id"])
            outcomes.append(_compared(state.runtime) - before)
        finally:
            exposure.end(token)
    assert set(outcomes) == {0, 3}, set(outcomes)  # all three reads compared, or none
    assert 50 <= outcomes.count(3) <= 150


def _tamper_name(app, product_id, name):
    dynamo = app.extensions["shop"].dynamo
    dynamo.client.update_item(TableName=dynamo.table("catalog"), Key=encode(keys.product(product_id)),
                              UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                              ExpressionAttributeValues=encode({":n": name}))


def test_a_canary_is_sticky_per_reader_and_taken_back_at_once(fresh):
    app, api, control, product = fresh
    assert control.expose(["product"], "pytest", compare_percent=0).ok
    assert control.expose(["product"], "pytest", rollout=50, force=True, reason="no evidence in this test").ok
    _tamper_name(app, product["id"], "Lamp as DynamoDB holds it")  # tells which store answered
    try:
        readers = [api.register()[1] for _ in range(24)]
        seen = {}
        for token in readers:
            names = {api.call("GET", f"/api/products/{product['id']}", token).get_json()["data"]["product"]["name"]
                     for _ in range(3)}
            assert len(names) == 1, names  # sticky: the same store on every read
            seen[token] = names.pop()
        on_ddb = [t for t, name in seen.items() if name == "Lamp as DynamoDB holds it"]
        assert 0 < len(on_ddb) < len(readers)  # 24 readers at 50%: all or none would be 1 in 8 million
        assert control.expose(["product"], "pytest", rollout=0).ok
        for token in on_ddb:
            assert api.call("GET", f"/api/products/{product['id']}", token).get_json()["data"]["product"]["name"] \
                == "Lamp"
    finally:
        _tamper_name(app, product["id"], "Lamp")


def test_a_canary_places_an_api_reader_without_touching_the_session(fresh):
    """The API's readers are placed by their token, however it is sent (a bare token is the
    reference API's other form), and never by the session: reading it would make every API
    answer vary by Cookie."""
    from shop import readers
    app, api, control, product = fresh
    user, token = api.register()
    with app.test_request_context("/api/products/1", headers={"Authorization": token}):
        assert readers.key() == f"user:{user['id']}"
    with app.test_request_context("/api/products/1", headers={"Authorization": f"Bearer {token}"}):
        assert readers.key() == f"user:{user['id']}"
    assert control.expose(["product"], "pytest", rollout=50, force=True, reason="no evidence in this test").ok
    try:
        for who in (None, token):
            answer = api.call("GET", f"/api/products/{product['id']}", who)
            assert answer.status_code == 200 and "Cookie" not in answer.headers.get("Vary", ""), answer.headers
    finally:
        assert control.expose(["product"], "pytest", rollout=0).ok


def test_an_anonymous_browser_is_a_visitor_and_stays_one(fresh):
    app, api, control, product = fresh
    assert control.expose(["product"], "pytest", compare_percent=0).ok
    assert control.expose(["product"], "pytest", rollout=50, force=True, reason="no evidence in this test").ok
    try:
        browser = app.test_client()
        first = browser.get(f"/products/{product['id']}")
        assert first.status_code == 200
        cookie = browser.get_cookie("shop_visitor")
        assert cookie is not None and cookie.http_only
        browser.get(f"/products/{product['id']}")
        assert browser.get_cookie("shop_visitor").value == cookie.value  # one visitor, one place
    finally:
        assert control.expose(["product"], "pytest", rollout=0).ok


@pytest.fixture
def memory():
    exporter = InMemorySpanExporter()
    observability.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def _held_dynamodb(app):
    """DynamoDB reads of the app wait until the test lets them go (on both of its clients)."""
    entered, release = threading.Event(), threading.Event()

    def hold(**_):
        entered.set()
        assert release.wait(30)
    dynamo = app.extensions["shop"].dynamo
    with impatient():
        clients = {dynamo.client}
    clients.add(dynamo.client)
    for client in clients:
        client.meta.events.register("before-call.dynamodb.GetItem", hold)
        client.meta.events.register("before-call.dynamodb.Query", hold)

    def unhook():
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb.GetItem", hold)
            client.meta.events.unregister("before-call.dynamodb.Query", hold)
    return entered, release, unhook


def test_shadow_mode_answers_before_the_other_read_ends(fresh, memory):
    app, api, control, product = fresh
    runtime = app.extensions["shop"].runtime
    assert control.expose(["product"], "pytest", compare_mode="shadow").ok
    before = _compared(runtime)
    entered, release, unhook = _held_dynamodb(app)
    try:
        answer = api.call("GET", f"/api/products/{product['id']}")
        assert answer.status_code == 200 and answer.get_json()["data"]["product"]["name"] == "Lamp"
        assert poll(entered.is_set)  # DynamoDB's read began, on the shadow pool ...
        assert _compared(runtime) == before  # ... and the request had its answer before it ended
    finally:
        release.set()
        unhook()
    assert runtime.shadow.drain(10)
    assert _entity_metric(runtime, "shop_entity_comparisons_total", entity="product", outcome="match") >= 1
    assert _compared(runtime) == before + 1
    shadow = [s for s in memory.get_finished_spans() if s.name == "shadow ProductRepository.get_by_id"]
    routed = [s for s in memory.get_finished_spans() if s.name == "ProductRepository.get_by_id"]
    assert shadow and routed
    # Its own trace, linked to the request's routed read.
    assert shadow[-1].parent is None and shadow[-1].links[0].context.span_id == routed[-1].context.span_id


def test_a_full_shadow_pool_drops_and_counts_never_queues(fresh):
    app, api, control, product = fresh
    runtime = app.extensions["shop"].runtime  # one shadow worker, no queue (the fixture's settings)
    assert control.expose(["product"], "pytest", compare_mode="shadow").ok
    dropped = _entity_metric(runtime, "shop_shadow_dropped_total", entity="product")
    entered, release, unhook = _held_dynamodb(app)
    try:
        assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
        assert poll(entered.is_set)  # the one worker is busy
        assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
        assert _entity_metric(runtime, "shop_shadow_dropped_total", entity="product") == dropped + 1
    finally:
        release.set()
        unhook()
    assert runtime.shadow.drain(10)


def test_shadow_comparisons_respect_an_open_breaker(fresh):
    """With DynamoDB's breaker open, a shadow comparison does not ask it (as an inline one does
    not): the skip is counted against DynamoDB, and no lucky answer closes the breaker behind
    its half-open probe."""
    app, api, control, product = fresh
    runtime = app.extensions["shop"].runtime
    assert control.expose(["product"], "pytest", compare_mode="shadow").ok
    asked = _entity_metric(runtime, "shop_store_duration_seconds_count", store="dynamodb",
                           operation="ProductRepository.get_by_id")
    skipped = runtime.stats.snapshot()["comparisons"].get("skipped", 0)
    for _ in range(runtime.breaker.threshold):
        runtime.breaker.failure()
    try:
        assert runtime.breaker.state == "open"
        assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
        assert runtime.shadow.drain(10)
        assert _entity_metric(runtime, "shop_store_duration_seconds_count", store="dynamodb",
                              operation="ProductRepository.get_by_id") == asked
        assert runtime.stats.snapshot()["comparisons"].get("skipped", 0) == skipped + 1
        assert runtime.breaker.state == "open"
    finally:
        runtime.breaker.success()


def test_inline_raises_a_mismatch_shadow_reports_it(fresh):
    app, api, control, product = fresh
    state = app.extensions["shop"]
    _tamper_name(app, product["id"], "Renamed behind the app")
    try:
        inline = api.call("GET", f"/api/products/{product['id']}")
        assert inline.status_code == 500 and inline.get_json()["error"]["type"] == "DualReadMismatch"
        assert control.expose(["product"], "pytest", compare_mode="shadow").ok
        mismatches = state.runtime.stats.snapshot()["comparisons"].get("mismatch", 0)
        shadow = api.call("GET", f"/api/products/{product['id']}")
        assert shadow.status_code == 200 and shadow.get_json()["data"]["product"]["name"] == "Lamp"
        assert state.runtime.shadow.drain(10)
        assert state.runtime.stats.snapshot()["comparisons"].get("mismatch", 0) == mismatches + 1
    finally:
        _tamper_name(app, product["id"], "Lamp")


def test_the_evidence_gate_refuses_an_idle_phase_3_and_counts_comparisons(fresh):
    app, api, control, product = fresh
    state = app.extensions["shop"]
    # A fresh phase 3 on a second app over the same stores: no reads yet.
    assert control.set(2, "pytest").ok and control.set(3, "pytest", force=True, reason="restart phase 3").ok
    gate = {g.name: g for g in control.gates(control.view.refresh(), 4, dry=True)}
    idle = gate["enough comparisons of every entity read in phase 3"]
    assert not idle.ok and "idle" in idle.detail
    for _ in range(25):
        assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
    state.runtime.evidence.flush()
    gate = {g.name: g for g in control.gates(control.view.refresh(), 4, dry=True)}
    enough = gate["enough comparisons of every entity read in phase 3"]
    assert enough.ok and "product 25 compared" in enough.detail, enough.detail
    assert gate["DynamoDB's errors and latency within limits"].ok


def test_raising_a_canary_is_gated_on_the_evidence_at_its_step_lowering_never(fresh):
    app, api, control, product = fresh
    state = app.extensions["shop"]
    assert control.set(2, "pytest").ok
    refused = control.expose(["product"], "pytest", rollout=5)
    assert not refused.ok and "the server is in phase 3" in refused.message  # phase 2: DynamoDB not verified
    assert control.set(3, "pytest", force=True, reason="back to 3").ok
    idle = control.expose(["product"], "pytest", rollout=5)
    assert not idle.ok and "no other entity's DynamoDB reads were enough" in idle.message  # no reads at this step
    for _ in range(12):
        assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
    state.runtime.evidence.flush()
    assert control.expose(["product"], "pytest", rollout=5).ok
    # The step restarted the evidence: the next step up waits for reads at 5%.
    assert not control.expose(["product"], "pytest", rollout=25).ok
    for _ in range(3):
        assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
    state.runtime.evidence.flush()
    few = control.expose(["product"], "pytest", rollout=25)
    assert not few.ok and "fewer than 10" in few.message  # some reads, not enough to judge
    assert control.expose(["product"], "pytest", rollout=0).ok  # down: never gated
    history = control.store.history(5)
    assert history[0]["outcome"] == "exposed" and "DynamoDB serves 0% of readers" in history[0]["reason"]


def test_an_entity_read_too_rarely_to_judge_does_not_hold_its_ramp_back(fresh):
    """Users are read at sign-in and on the profile, far less than products: a canary step of
    theirs passes with a few clean DynamoDB reads while another entity was read enough (the
    new-operator walk could not take users past 5% under a shop-like load); an idle server
    still refuses."""
    app, api, control, product = fresh
    state = app.extensions["shop"]
    assert control.set(2, "pytest").ok and control.set(3, "pytest", force=True, reason="rare entity").ok  # a new step
    api.register()  # a few user reads, each compared (DynamoDB read too)
    state.runtime.evidence.flush()
    alone = control.expose(["user"], "pytest", rollout=5)
    assert not alone.ok and "too few to judge" in alone.message and "no other entity" in alone.message, alone.gates
    for _ in range(12):
        assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
    state.runtime.evidence.flush()
    result = control.expose(["user"], "pytest", rollout=5)
    assert result.ok, result.message
    assert control.store.history(1)[0]["outcome"] == "exposed"


def test_too_few_to_judge_never_covers_a_failing_store_or_an_entity_dynamodb_was_hardly_asked(fresh):
    """The rule for rarely read entities has three ways to refuse: one of its own DynamoDB reads
    failed; it was read often (from MySQL) and DynamoDB hardly asked; the other entities'
    evidence is failures (breaker open: skipped reads), not health."""
    app, api, control, product = fresh
    state = app.extensions["shop"]
    evidence = state.runtime.evidence

    def step(name):  # a new phase-3 step with nothing recorded yet
        assert control.set(2, "pytest").ok and control.set(3, "pytest", force=True, reason=name).ok

    def healthy_products(n=12):
        for _ in range(n):
            evidence.read("product", "dynamodb", 0.002, failed=False)
            evidence.read("product", "mysql", 0.001, failed=False)

    step("one failed")
    healthy_products()
    evidence.read("user", "dynamodb", 0.002, failed=False)
    evidence.read("user", "dynamodb", 0.002, failed=True)
    evidence.flush()
    r = control.expose(["user"], "pytest", rollout=5)
    assert not r.ok and "user: 1 of its 2 DynamoDB reads at this step failed" in r.message, r.message

    step("hardly asked")
    healthy_products()
    for _ in range(15):
        evidence.read("user", "mysql", 0.001, failed=False)
    evidence.flush()
    r = control.expose(["user"], "pytest", rollout=5)
    assert not r.ok and "read 15 times at this step, 0 of them from DynamoDB" in r.message, r.message

    step("busy failing")
    for _ in range(12):
        evidence.skipped("product", "dynamodb")  # its breaker open: reads, none healthy
    evidence.read("user", "dynamodb", 0.002, failed=False)
    evidence.flush()
    r = control.expose(["user"], "pytest", rollout=5)
    assert not r.ok and "no other entity's DynamoDB reads were enough and within limits" in r.message, r.message


def test_an_exposure_sent_again_unchanged_saves_and_audits_nothing(fresh):
    """Re-sending the same rollout wrote `3 -> 3, exposed` each time, pushing the guard's steps
    out of the flag page's recent changes (the new-operator walk)."""
    app, api, control, product = fresh
    assert control.expose(["product"], "pytest", compare_percent=40).ok
    version, last = control.view.refresh().version, control.store.history(1)[0]
    again = control.expose(["product"], "pytest", compare_percent=40, reason="again")
    assert again.ok and "already so, nothing changed" in again.message
    assert control.view.refresh().version == version and control.store.history(1)[0] == last
    assert control.expose(["product", "cart"], "pytest", compare_percent=40).ok  # cart changes: saved
    assert control.view.refresh().version == version + 1


def test_bad_exposure_changes_are_refused_clearly_and_change_nothing(fresh):
    app, api, control, product = fresh
    version = control.view.refresh().version
    for kwargs, words in ((dict(names=["reviews"], compare_percent=5), "no entity reviews"),
                          (dict(names=["product"], compare_percent=101), "between 0 and 100"),
                          (dict(names=["product"], rollout=-1), "between 0 and 100"),
                          (dict(names=["product"], compare_mode="sometimes"), "inline or shadow"),
                          (dict(names=["product"]), "nothing to change")):
        names = kwargs.pop("names")
        result = control.expose(names, "pytest", **kwargs)
        assert not result.ok and words in result.message, result.message
    assert control.view.refresh().version == version
    page = app.test_client()
    page.get("/flags")
    with page.session_transaction() as s:
        csrf = s.get("csrf")
    answer = page.post("/flags/exposure", data={"csrf_token": csrf, "entity": "product", "rollout_percent": "lots"})
    assert answer.status_code == 303
    assert "is not a percentage" in page.get("/flags").get_data(as_text=True)
    assert control.view.refresh().version == version


def test_the_flag_page_and_phase_status_show_each_entitys_exposure(fresh):
    app, api, control, product = fresh
    assert control.expose(["product"], "pytest", compare_percent=40, compare_mode="shadow").ok
    html = app.test_client().get("/flags").get_data(as_text=True)
    assert 'id="exposure-product"' in html and "40.0% of requests compared, shadow" in html
    runner = app.test_cli_runner()
    out = runner.invoke(args=["phase", "status"]).output
    assert "reads by entity" in out and "product" in out and "shadow" in out
    out = runner.invoke(args=["phase", "compare", "all", "--percent", "15", "--reason", "cli"]).output
    assert "user, category, product, cart, order: compare 15% of requests" in out
    assert control.view.refresh().doc["entities"]["order"]["compare_percent"] == 15


def test_settings_refuse_impossible_exposure_defaults():
    from shop.config import ConfigError
    with pytest.raises(ConfigError, match="SHOP_COMPARE_MODE"):
        make_settings(compare_mode="sometimes")
    import os
    os.environ["SHOP_COMPARE_PERCENT"] = "150"
    try:
        with pytest.raises(ConfigError, match="SHOP_COMPARE_PERCENT must be between 0"):
            make_settings()
    finally:
        del os.environ["SHOP_COMPARE_PERCENT"]


def test_bucketing_is_stable_and_even():
    places = [exposure.bucket(f"user:{i}", "shop") for i in range(20000)]
    assert places[:50] == [exposure.bucket(f"user:{i}", "shop") for i in range(50)]
    under = sum(p < 25 for p in places)
    assert 4600 <= under <= 5400  # 20000 x 25%: sd 61
    assert exposure.step_below(50) == 25 and exposure.step_below(7) == 5 and exposure.step_below(1) == 0


def test_a_mismatch_refuses_phase_4_until_a_clean_verify_after_it(fresh):
    from shop.migration import jobs
    app, api, control, product = fresh
    state = app.extensions["shop"]
    assert control.set(2, "pytest").ok and control.set(3, "pytest", force=True, reason="a fresh phase 3").ok
    _tamper_name(app, product["id"], "Renamed behind the app")
    assert api.call("GET", f"/api/products/{product['id']}").status_code == 500  # inline: raised, and recorded
    gate = {g.name: g for g in control.gates(control.view.refresh(), 4, dry=True)}
    refused = gate["no unexplained dual-read mismatch in phase 3"]
    assert not refused.ok and "1 mismatches since" in refused.detail
    jobs.repair(state, divergent=True)
    assert jobs.verify(state, control=control).ok
    gate = {g.name: g for g in control.gates(control.view.refresh(), 4, dry=True)}
    explained = gate["no unexplained dual-read mismatch in phase 3"]
    assert explained.ok and "1 mismatches before the clean verify" in explained.detail, explained.detail


def test_the_share_dynamodb_serves_follows_the_phase_one_rule_for_metrics_and_status():
    """/metrics (shop_exposure_percent, rollout) and `phase status` / the flag page say the same:
    none before phase 3, the canary's share in 3, every reader from phase 4 on (phase 5's
    metric said 0 while the page said 100)."""
    from shop.aspects.exposure import Exposure
    canary = Exposure(read_rollout_percent=25)
    assert [canary.serves(p) for p in (None, 1, 2, 3, 4, 5)] == [0, 0, 0, 25, 100, 100]
