"""Faults made for real: DynamoDB Local stopped and restarted during dual writes; MySQL down."""
from __future__ import annotations

from dataclasses import replace

import pytest

from shop import Repositories, create_app
from shop.aspects.breaker import CLOSED, OPEN
from shop.repositories.dynamodb import keys
from shop.repositories.dynamodb.client import encode
from shop.prepare import prepare

from .conftest import TEST_DB, Api, unique
from .ddb_local import DynamoDBLocal

DUAL_WRITE = "READ_MYSQL,WRITE_MYSQL,WRITE_DDB"


@pytest.fixture
def outage(settings, tmp_path):
    """An app over its own MySQL database and its own DynamoDB Local process."""
    ddb = DynamoDBLocal(tmp_path).start()
    app = create_app(replace(settings, mysql_database=TEST_DB + "_faults", dynamodb_endpoint=ddb.endpoint,
                             dynamodb_table_prefix="faults", shop_flags=DUAL_WRITE, breaker_threshold=3,
                             breaker_cooldown_s=5, dynamodb_max_attempts=2, dynamodb_connect_timeout=1,
                             dynamodb_read_timeout=2))
    state = app.extensions["shop"]
    prepare(app, empty=True)
    yield app, ddb
    ddb.stop()
    state.runtime.close()
    state.db.close()


def test_dynamodb_outage_during_dual_writes_is_repaired(outage):
    app, ddb = outage
    state = app.extensions["shop"]
    api = Api(app.test_client())
    seller, stoken = api.register(seller=True)
    cat = api.category(stoken)
    lamp = api.product(stoken, cat["id"], inventory_quantity=50)
    assert state.runtime.repair_log.pending_count() == 0

    ddb.stop()  # DynamoDB goes away; MySQL stays the source of truth
    clock = {"now": 0.0}
    state.runtime.breaker.clock = lambda: clock["now"]
    statuses = []
    buyers = [api.register() for _ in range(3)]
    for user, token in buyers:
        statuses.append(api.call("POST", "/api/cart/items", token, {"productId": lamp["id"], "quantity": 2}).status_code)
        statuses.append(api.call("POST", "/api/orders/checkout", token, {"paymentMethod": "paypal"}).status_code)
    statuses.append(api.call("PUT", f"/api/products/{lamp['id']}", stoken, {"price": 25}).status_code)
    statuses.append(api.call("PUT", "/api/auth/profile", buyers[0][1], {"first_name": "Outage"}).status_code)
    assert all(s in (200, 201) for s in statuses), statuses  # no request failed
    assert state.runtime.breaker.state == OPEN  # later writes skipped DynamoDB instead of timing out

    pending = state.runtime.repair_log.pending()
    recorded = {(e["entity"], e["entity_id"]) for e in pending}
    orders = [o["id"] for _, t in buyers for o in api.call("GET", "/api/orders", t).get_json()["data"]["orders"]]
    expected = ({("user", str(u["id"])) for u, _ in buyers} | {("cart", str(u["id"])) for u, _ in buyers}
                | {("order", str(o)) for o in orders} | {("product", str(lamp["id"]))})
    assert len(orders) == 3 and expected <= recorded  # every failed write has a repair entry
    assert any("circuit open" in e["error"] for e in pending)

    ddb.start()  # back, with the data it had
    runner = app.test_cli_runner()
    diverged = runner.invoke(args=["verify"])
    assert diverged.exit_code == 1 and "divergent:" in diverged.output
    repaired = runner.invoke(args=["repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "0 failed" in repaired.output and state.runtime.repair_log.pending_count() == 0
    again = runner.invoke(args=["repair"])
    assert again.exit_code == 0 and "nothing to repair" in again.output
    verified = runner.invoke(args=["verify"])
    assert verified.exit_code == 0 and "divergent: 0 of" in verified.output, verified.output

    clock["now"] += 10  # past the cool-down: the next write probes DynamoDB, succeeds, closes the circuit
    assert api.call("PUT", "/api/auth/profile", buyers[1][1], {"first_name": "Back"}).status_code == 200
    assert state.runtime.breaker.state == CLOSED
    ddb_user = Repositories.dynamodb(state.dynamo).users.get_by_id(buyers[1][0]["id"])
    assert ddb_user.first_name == "Back"


def test_secondary_failure_policy_raise(outage, settings):
    app, ddb = outage
    state = app.extensions["shop"]
    strict = create_app(replace(state.settings, dual_write_policy="raise"))
    api = Api(strict.test_client())
    ddb.stop()
    name = unique()
    r = api.call("POST", "/api/auth/register", json={"username": name, "email": f"{name}@x.com",
                                                      "password": "Secret123!"})
    assert r.status_code == 503 and r.get_json()["error"]["type"] == "SecondaryWriteFailed"
    with state.db.cursor() as cur:
        cur.execute("SELECT id FROM users WHERE username = %s", (name,))
        user_id = cur.fetchone()["id"]  # MySQL kept the write: it is the source of truth
    assert ("user", str(user_id)) in {(e["entity"], e["entity_id"]) for e in state.runtime.repair_log.pending()}
    strict.extensions["shop"].runtime.close()


def test_mysql_unreachable_gives_clean_errors_and_writes_nothing_to_dynamodb(settings, dynamo):
    down = create_app(replace(settings, mysql_port=1, mysql_connect_timeout=1, shop_flags=DUAL_WRITE))
    api = Api(down.test_client())
    name = unique()
    r = api.call("POST", "/api/auth/register", json={"username": name, "email": f"{name}@x.com",
                                                      "password": "Secret123!"})
    assert r.status_code == 503 and r.get_json()["error"]["type"] == "DatabaseError"
    guard = dynamo.client.get_item(TableName=dynamo.table("users"), Key=encode(keys.username_guard(name)))
    assert "Item" not in guard
    dual_read = create_app(replace(settings, mysql_port=1, mysql_connect_timeout=1,
                                   shop_flags="READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"))
    r = dual_read.test_client().get("/api/products/1")
    assert r.status_code == 503 and "Traceback" not in r.get_data(as_text=True)
    for a in (down, dual_read):
        a.extensions["shop"].runtime.close()


def test_backfill_copies_what_mysql_had_before_the_migration(outage):
    app, _ = outage
    from shop.aspects import MYSQL_ONLY, use_flags
    api = Api(app.test_client())
    with use_flags(MYSQL_ONLY):  # data from before the migration: MySQL only
        seller, stoken = api.register(seller=True)
        cat = api.category(stoken)
        child = api.category(stoken, parent_id=cat["id"])
        prod = api.product(stoken, child["id"])
        buyer, btoken = api.register()
        api.call("POST", "/api/cart/items", btoken, {"productId": prod["id"], "quantity": 2})
        api.call("POST", "/api/orders/checkout", btoken, {"paymentMethod": "paypal"})
        api.call("POST", "/api/cart/items", btoken, {"productId": prod["id"], "quantity": 1})
    runner = app.test_cli_runner()
    before = runner.invoke(args=["verify"])
    assert before.exit_code == 1 and "divergent: 7 of 7" in before.output, before.output
    done = runner.invoke(args=["backfill"])
    assert done.exit_code == 0 and "backfilled 7 of 7 entities; 0 failed" in done.output, done.output
    after = runner.invoke(args=["verify"])
    assert after.exit_code == 0 and "divergent: 0 of 7" in after.output, after.output
