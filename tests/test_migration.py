"""The migration journey on one live dataset: the server phase changed at runtime behind its
gates, 1 -> 5 and back, with the bugs that lived between phases as regressions.

One application over its own MySQL database and DynamoDB tables (the phase is server-wide
state), carried through every phase by the same control the CLI and the flag page use.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import replace

import pytest

from shop import Repositories, create_app
from shop.aspects import use_flags
from shop.domain import NewProduct, NewUser
from shop.flags_ui.cookie import NAME
from shop.migration import jobs
from shop.migration.control import PhaseControl
from shop.migration.journal import TO_DYNAMODB, TO_MYSQL

from .test_api_shopping import CARD
from .conftest import PASSWORD, TEST_DB, Api, forget_phase, make_settings, unique, poll


def _app(**overrides):
    from shop.prepare import prepare
    settings = make_settings(mysql_database=TEST_DB + "_journey", dynamodb_table_prefix=f"j{uuid.uuid4().hex[:8]}",
                             phase_refresh_ms=100, gate_compare_window_s=0, gate_min_comparisons=0,
                             guard_enabled=False, **overrides)
    app = create_app(settings)
    prepare(app, empty=True)
    return app


def _close(app):
    from shop.repositories.dynamodb.tables import delete_tables
    state = app.extensions["shop"]
    delete_tables(state.dynamo)
    state.close()
    state.db.close()


@pytest.fixture(scope="module")
def world():
    app = _app()
    yield app
    _close(app)


@pytest.fixture
def control(world):
    return PhaseControl(world.extensions["shop"])


def _stores(app):
    state = app.extensions["shop"]
    return Repositories.mysql(state.db), Repositories.dynamodb(state.dynamo)


def _dual_written_product(app, name="P", price=3, stock=4):
    """A seller, a category and a product written to both stores, as phase 2 writes them."""
    routed = app.extensions["shop"].repos
    with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):
        owner = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        cat = routed.categories.create(unique("C "), None)
        product = routed.products.create(owner.id, NewProduct(category_id=cat.id, name=name, price=price,
                                                               inventory_quantity=stock))
    return owner, cat, product


def _to(control, target, **kw):
    result = control.set(target, "pytest", **kw)
    assert result.ok, result.message
    return result


def _past_propagation(control):
    since = control.view.refresh().doc["dual_write_since"]
    from shop.migration.state import now, parse
    assert poll(lambda: now() >= parse(since) + control.propagation)


def _backfill_and_verify(app, control):
    _past_propagation(control)
    report = jobs.backfill(app.extensions["shop"], control=control)
    assert not report.failed, report.failed
    checked = jobs.verify(app.extensions["shop"], control=control)
    assert checked.ok, checked.divergent


def test_one_dataset_through_every_phase_and_back(world, control):
    api = Api(world.test_client())
    mysql, ddb = _stores(world)
    # Phase 1: the shop before the migration.
    seller, seller_token = api.register(seller=True)
    cat = api.category(seller_token)
    product = api.product(seller_token, cat["id"], inventory_quantity=50)
    buyer, buyer_token = api.register()
    assert api.call("POST", "/api/cart/items", buyer_token, {"productId": product["id"], "quantity": 1}).status_code == 201

    _to(control, 2, reason="start dual writing")
    # The cart bug: adding 1 then 2 left MySQL at 3 and DynamoDB at 2 (the mirror stored the delta).
    other, other_token = api.register()
    refused = control.set(3, "pytest")
    assert not refused.ok and "backfill" in refused.message  # 3 before a backfill would serve mismatches
    _backfill_and_verify(world, control)
    for q in (1, 2):
        assert api.call("POST", "/api/cart/items", other_token, {"productId": product["id"], "quantity": q}).status_code == 201
    assert mysql.carts.get_item(other["id"], product["id"]).quantity == 3
    assert ddb.carts.get_item(other["id"], product["id"]).quantity == 3

    _to(control, 3)
    assert api.call("GET", f"/api/products/{product['id']}").status_code == 200
    r = api.call("POST", "/api/orders/checkout", other_token, {"paymentMethod": "credit_card", "paymentDetails": CARD})
    assert r.status_code in (200, 201), r.get_json()
    _to(control, 4)
    refused = control.set(5, "pytest")
    assert not refused.ok and "verify clean since entering phase 4" in refused.message
    assert jobs.verify(world.extensions["shop"], control=control).ok
    _to(control, 5, reason="DynamoDB takes over")
    counters = control.view.refresh().doc
    assert counters["phase"] == 5

    # Phase 5: brand-new accounts get ids nobody has (the 409 "User 4 already exists" bug).
    newcomer, newcomer_token = api.register()
    with mysql.users.db.cursor() as cur:
        cur.execute("SELECT MAX(id) AS m FROM users")
        assert newcomer["id"] > cur.fetchone()["m"]
    assert mysql.users.get_by_id(newcomer["id"]) is None  # DynamoDB alone has it, for now
    fresh = api.product(seller_token, cat["id"], inventory_quantity=5)
    new_email = unique() + "@moved.example"
    assert api.call("PUT", "/api/auth/profile", buyer_token, {"email": new_email}).status_code == 200
    assert api.call("POST", "/api/cart/items", newcomer_token, {"productId": fresh["id"], "quantity": 2}).status_code == 201
    pending = world.extensions["shop"].runtime.journal.counts()
    assert pending[TO_MYSQL] >= 3
    # The journal is phase 5's way back, not a fault; DynamoDB serves every entity's reads.
    page = world.test_client().get("/flags").get_data(as_text=True)
    assert "expected in phase 5" in page and "the next forward gate waits" not in page
    assert {row["serves"] for row in control.exposure(control.view.refresh())} == {100.0}

    # `backfill` used to delete what only DynamoDB held; now it leaves it and says so.
    report = jobs.backfill(world.extensions["shop"])
    left = {(e, int(i)) for e, i, _ in report.left}
    assert ("user", newcomer["id"]) in left and ("product", fresh["id"]) in left
    assert ddb.users.get_by_id(newcomer["id"]) is not None and ddb.products.get_by_id(fresh["id"]) is not None

    # Out of 5: what DynamoDB alone received is copied back, with its ids, before the switch.
    result = _to(control, 4, reason="roll back")
    assert any(g.name.startswith("verify clean") and g.ok for g in result.gates)
    assert mysql.users.get_by_id(newcomer["id"]).username == newcomer["username"]
    assert mysql.users.get_by_id(buyer["id"]).email == new_email
    assert mysql.carts.get_item(newcomer["id"], fresh["id"]).quantity == 2
    assert world.extensions["shop"].runtime.journal.counts()[TO_MYSQL] == 0
    # MySQL's next ids start past every id DynamoDB handed out: nothing can cross.
    late, late_token = api.register()
    assert late["id"] > newcomer["id"]
    assert api.call("GET", "/api/auth/profile", newcomer_token).get_json()["data"]["user"]["username"] == newcomer["username"]

    _to(control, 3)
    _to(control, 2)
    _to(control, 1, reason="back where we started")
    # In phase 1 the accounts made in phase 5 log in against MySQL.
    r = api.call("POST", "/api/auth/login", json={"username": newcomer["username"], "password": PASSWORD})
    assert r.status_code == 200 and r.get_json()["data"]["user"]["id"] == newcomer["id"]
    assert jobs.verify(world.extensions["shop"]).ok
    history = control.store.history(50)
    assert [e["to"] for e in history if e["outcome"] == "changed"][:9] == ["1", "2", "3", "4", "5", "4", "3", "2"][:9] or \
        len([e for e in history if e["outcome"] == "changed"]) >= 9


def test_gates_refuse_with_reasons_and_force_is_audited(world, control):
    _to(control, 1)
    _to(control, 2)
    r = control.set(4, "pytest")
    assert not r.ok and "one step at a time" in r.message
    r = control.set(3, "pytest")
    assert not r.ok
    forced = control.set(3, "pytest", force=True, reason="testing the override")
    assert forced.ok and forced.forced
    entry = control.store.history(1)[0]
    assert (entry["who"], entry["from"], entry["to"], entry["outcome"], entry["forced"]) == (
        "pytest", "2", "3", "forced", True)
    assert entry["reason"] == "testing the override" and any(not g["ok"] for g in entry["gates"])
    _to(control, 1)


def test_a_verify_vouches_only_after_a_backfill_of_this_dual_writing(world, control):
    """After a return (dual writing begun anew), the backfill gate asked for a new backfill while
    the verify gate still passed on a verify of the old one (the new-operator walk: 5 -> 4 -> 3 -> 2)."""
    _to(control, 1)
    _to(control, 2)
    _backfill_and_verify(world, control)
    gates = {g.name: g for g in control.gates(control.view.refresh(), 3, dry=True)}
    assert gates["verify clean after the backfill"].ok and gates["backfill after dual writing began"].ok
    _to(control, 1)
    _to(control, 2)  # dual writing begins anew: what was written in phase 1 only is in neither run
    gates = {g.name: g for g in control.gates(control.view.refresh(), 3, dry=True)}
    assert not gates["backfill after dual writing began"].ok
    verify = gates["verify clean after the backfill"]
    assert not verify.ok and "waits for a backfill after dual writing began" in verify.detail, verify.detail
    _backfill_and_verify(world, control)
    assert all(g.ok for g in control.gates(control.view.refresh(), 3, dry=True)), "every gate to 3 after both"
    _to(control, 1)


def test_a_phase_change_reaches_another_worker_without_a_restart(world, control):
    _to(control, 1)
    other = create_app(world.extensions["shop"].settings)  # a second worker on the same stores
    try:
        runtime = other.extensions["shop"].runtime
        assert runtime.server_flags() == control.view.current().flags
        _to(control, 2)
        assert poll(lambda: runtime.server_flags().write_ddb, timeout=5)
    finally:
        other.extensions["shop"].runtime.close()
        _to(control, 1)


def test_the_state_is_read_from_dynamodb_when_mysql_is_gone(world, control):
    _to(control, 2)
    try:
        from shop.db import Database
        from shop.migration.state import PhaseStore
        settings = replace(world.extensions["shop"].settings, mysql_port=1, mysql_connect_timeout=1)
        retired = PhaseStore(Database(settings), world.extensions["shop"].dynamo)
        assert retired.load(control.view.default).phase == 2
    finally:
        _to(control, 1)


def test_cli_phase_status_and_set(world, control):
    _to(control, 1)
    runner = world.test_cli_runner()
    out = runner.invoke(args=["phase", "status", "--json"])
    assert out.exit_code == 0 and '"phase": 1' in out.output
    out = runner.invoke(args=["phase", "set", "3"])
    assert out.exit_code == 1 and "one step at a time" in out.output
    out = runner.invoke(args=["phase", "set", "2", "--reason", "from the cli", "--who", "ops"])
    assert out.exit_code == 0, out.output
    assert control.store.history(1)[0]["who"] == "ops"
    out = runner.invoke(args=["phase", "status"])
    assert "phase 2" in out.output and "to phase 3" in out.output
    # Its history, as its help says: the last change, by whom and why.
    assert re.search(r"recent changes.*\n.*changed\s+1 -> 2\s+by ops: from the cli", out.output), out.output
    # Names as an operator types them: commas or spaces.
    out = runner.invoke(args=["phase", "compare", "user,product", "cart", "--percent", "60"])
    assert out.exit_code == 0 and "user, product, cart: compare 60% of requests" in out.output, out.output
    _to(control, 1)


def test_a_browser_cannot_write_where_the_server_does_not(world, control):
    """An anonymous visitor who picked "DynamoDB only" got ids MySQL also handed out, and a token
    that later authenticated as someone else; now writes follow the server's phase."""
    _to(control, 1)
    client = world.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/flags").get_data(as_text=True)).group(1)
    client.post("/flags/preset/ddb-only", data={"csrf_token": token})
    api = Api(client)
    user, bearer = api.register()
    mysql, ddb = _stores(world)
    assert mysql.users.get_by_id(user["id"]).username == user["username"]
    assert ddb.users.get_by_id(user["id"]) is None
    plain = Api(world.test_client())
    assert plain.call("GET", "/api/auth/profile", bearer).get_json()["data"]["user"]["username"] == user["username"]


def test_the_logged_in_user_is_loaded_by_the_servers_phase(world, control):
    """A shopper whose browser tries DynamoDB-only reads in phase 1 (DynamoDB lacks the account)
    stays logged in, and the page says trial flags are in force."""
    _to(control, 1)
    mysql, _ = _stores(world)
    only_mysql = mysql.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    client = world.test_client()
    with client.session_transaction() as s:
        s["user_id"] = only_mysql.id
    client.set_cookie(NAME, world.extensions["flag_cookie"].dumps(
        __import__("shop").aspects.Flags.parse("READ_DDB,WRITE_DDB")))
    html = client.get("/").get_data(as_text=True)
    assert only_mysql.username in html and 'id="trial-notice"' in html


def test_browser_dual_reads_report_and_pending_records_are_not_raised(world, control):
    _to(control, 1)
    mysql, ddb = _stores(world)
    routed = world.extensions["shop"].repos
    with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):
        seller = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    with mysql.users.db.cursor(write=True) as cur:  # MySQL moves on; DynamoDB misses it
        cur.execute("UPDATE users SET first_name = 'Changed' WHERE id = %s", (seller.id,))
    runtime = world.extensions["shop"].runtime
    from shop.aspects import DualReadMismatch
    with use_flags("READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"):
        with pytest.raises(DualReadMismatch) as raised:
            routed.users.get_by_id(seller.id)
        assert "Changed" not in str(raised.value)  # names, never the records' values
        runtime.journal.record(TO_DYNAMODB, [("user", seller.id)], "test", "known divergence")
        assert routed.users.get_by_id(seller.id).first_name == "Changed"  # reported, MySQL's answer
    jobs.repair(world.extensions["shop"])
    assert ddb.users.get_by_id(seller.id).first_name == "Changed"


def test_an_open_entry_for_one_record_does_not_hide_a_listings_other_differences(world, control):
    """A listing's difference is "pending repair" only when a record it shows has an open
    entry: an entry for any product of the catalogue used to hide every listing's mismatch
    from the 3 -> 4 gate, and cost a scan per read (review finding)."""
    from shop.aspects import DualReadMismatch
    from shop.domain import ProductFilters
    _to(control, 1)
    mysql, _ = _stores(world)
    owner, _, p = _dual_written_product(world)
    _, _, elsewhere = _dual_written_product(world)
    with mysql.users.db.cursor(write=True) as cur:  # MySQL moves on; DynamoDB misses it
        cur.execute("UPDATE products SET name = 'Changed' WHERE id = %s", (p.id,))
    journal = world.extensions["shop"].runtime.journal
    journal.record(TO_DYNAMODB, [("product", elsewhere.id)], "test", "a divergence elsewhere")
    routed = world.extensions["shop"].repos
    mine = ProductFilters(seller_id=owner.id)
    with use_flags("READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"):
        with pytest.raises(DualReadMismatch):
            routed.products.list_products(mine)
        journal.record(TO_DYNAMODB, [("product", p.id)], "test", "known divergence")
        assert routed.products.list_products(mine).items[0].name == "Changed"  # reported, MySQL's answer
    jobs.repair(world.extensions["shop"])


def test_a_listings_total_moved_by_a_journaled_record_on_another_page_is_pending(world, control):
    """Journey finding: a product written to MySQL alone while DynamoDB was down (journaled)
    changes every listing's total, also on pages that do not show it; that difference is
    pending repair, not a mismatch raised to the shopper."""
    from shop.domain import ProductFilters
    _to(control, 1)
    mysql, _ = _stores(world)
    owner, cat, p = _dual_written_product(world)
    hidden = mysql.products.create(owner.id, NewProduct(category_id=cat.id, name="MySQL only", price=1,
                                                        inventory_quantity=1))  # the mirror failed
    mine = ProductFilters(seller_id=owner.id)
    page = next(n for n in (1, 2) if [x.id for x in mysql.products.list_products(mine, page=n, limit=1).items] == [p.id])
    journal = world.extensions["shop"].runtime.journal
    journal.record(TO_DYNAMODB, [("product", hidden.id)], "test", "circuit open: DynamoDB was failing")
    routed = world.extensions["shop"].repos
    with use_flags("READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"):
        shown = routed.products.list_products(mine, page=page, limit=1)
    assert shown.total == 2 and [x.id for x in shown.items] == [p.id]  # MySQL's answer, reported
    jobs.repair(world.extensions["shop"])


def test_the_flag_page_is_locked_outside_development(settings, app):  # app: the schema exists
    locked = create_app(replace(settings, shop_env="production"))
    try:
        c = locked.test_client()
        assert c.get("/flags").status_code == 403 and c.get("/flags/health.json").status_code == 403
        assert c.post("/flags/preset/ddb-only", data={}).status_code == 403
        assert c.get("/").status_code == 200
    finally:
        locked.extensions["shop"].runtime.close()


def test_a_recorded_deletion_is_the_only_thing_that_deletes(world, control):
    _to(control, 1)
    mysql, ddb = _stores(world)
    routed = world.extensions["shop"].repos
    _, _, doomed = _dual_written_product(world, "Doomed", 1, 1)
    only_ddb = ddb.categories.create(unique("Only DDB "), None)
    routed.products.delete(doomed.id)  # phase 1: DynamoDB not written, the deletion is recorded
    assert ddb.products.get_by_id(doomed.id) is not None
    _to(control, 2)
    report = jobs.backfill(world.extensions["shop"])
    assert ddb.products.get_by_id(doomed.id) is None  # recorded: deleted
    assert ddb.categories.get_by_id(only_ddb.id) is not None  # not recorded: left, and said so
    assert ("category", only_ddb.id) in {(e, int(i)) for e, i, _ in report.left}
    _to(control, 1)


def test_backfill_and_verify_marks_never_store_a_phase(world):
    """`make run` backfills when SHOP_FLAGS dual-writes; that must not pin the server to those
    flags for every later start (SHOP_FLAGS applies until an operator stores a phase)."""
    forget_phase(world)
    app = create_app(replace(world.extensions["shop"].settings, shop_flags="READ_MYSQL,WRITE_MYSQL,WRITE_DDB"))
    try:
        control = PhaseControl(app.extensions["shop"])
        jobs.backfill(app.extensions["shop"], control=control)
        state = control.view.refresh()
        assert state.source == "SHOP_FLAGS" and state.mark("backfill") and state.phase == 2
        world.extensions["shop"].runtime.phase.refresh()  # started with SHOP_FLAGS of phase 1
        assert world.extensions["shop"].runtime.server_flags().write_ddb is False
        assert not control.set(3, "pytest").ok  # when dual writing began is unknown: record it first
        assert control.set(2, "pytest", reason="record it").ok
        assert control.view.refresh().source == "stored" and control.view.current().doc["dual_write_since"]
    finally:
        app.extensions["shop"].runtime.close()
        forget_phase(world)


def test_carts_and_orders_are_compared_on_their_own_attributes(world, control):
    """A hot product's stock, moved by other shoppers between the two stores' reads, is the
    product's business (compared on its own reads), not a difference of every cart holding it."""
    from shop.aspects import DualReadMismatch
    from shop.repositories.dynamodb import keys
    from shop.repositories.dynamodb.client import encode
    _to(control, 1)
    routed = world.extensions["shop"].repos
    dynamo = world.extensions["shop"].dynamo
    owner, _, p = _dual_written_product(world, "Hot", 2, 9)
    with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):
        routed.carts.add_item(owner.id, p.id, 2)

    def tamper(table, key, expression, value):
        dynamo.call("update_item", TableName=dynamo.table(table), Key=encode(key), UpdateExpression=expression,
                    ExpressionAttributeValues=encode({":v": value}))
    tamper("catalog", keys.product(p.id), "SET inventory_quantity = :v", 1)
    with use_flags("READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"):
        assert routed.carts.list_items(owner.id)[0].quantity == 2  # the joined stock is not the cart's
        with pytest.raises(DualReadMismatch):
            routed.products.get_by_id(p.id)  # the product's own read still compares it
        tamper("users", keys.cart_line(owner.id, p.id), "SET quantity = :v", 5)
        with pytest.raises(DualReadMismatch) as raised:
            routed.carts.list_items(owner.id)
        assert raised.value.attributes == ["[].quantity"]


def test_no_request_waits_on_rereading_the_phase(world):
    """A stalled DynamoDB held one request per refresh period for the client's full timeout
    (61 s in `make reliability`), and a worker idle for two periods re-read the phase on a
    request's thread. Now a thread of the worker's own polls both stores at once and takes
    what answered: while DynamoDB stalls, MySQL's copy keeps the view fresh, and requests only
    take the state last read."""
    from reliability.proxy import Proxy
    from shop.migration.state import PhaseStore, PhaseView
    from urllib.parse import urlparse
    from shop.repositories.dynamodb import Dynamo

    settings = world.extensions["shop"].settings
    proxy = Proxy(urlparse(settings.dynamodb_endpoint).port)
    view = None
    try:
        stalled = Dynamo(replace(settings, dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}", dynamodb_read_timeout=30))
        forget_phase(world)  # nothing stored: the view reads DynamoDB's copy too
        view = PhaseView(PhaseStore(world.extensions["shop"].db, stalled), world.extensions["shop"].runtime.default_flags,
                         refresh_s=0.2)
        first = view.current()  # a worker's first request waits for its first read
        assert view.age_s() is not None
        proxy.stall = True
        poll(lambda: proxy.held, 10, "the poll's DynamoDB read to be stalled")
        read_before = time.monotonic() - view.age_s()
        poll(lambda: time.monotonic() - view.age_s() > read_before, 10, "a read while DynamoDB stalls")
        assert proxy.stall and view.current() == first  # MySQL's copy served; DynamoDB's read still held
    finally:
        if view is not None:
            view.close()
        proxy.cut = True
        proxy.close()


def test_the_copy_back_never_updates_another_users_row_through_a_unique_key(world, control):
    """username and email are unique in MySQL: an upsert of a DynamoDB-only user whose email a
    different MySQL user holds would have rewritten that user's password hash (review finding)."""
    _to(control, 1)
    mysql, ddb = _stores(world)
    email = unique() + "@taken.example"
    holder = mysql.users.create(NewUser(username=unique(), email=email, password_hash="holder-hash"))
    newcomer = ddb.users.create(NewUser(username=unique(), email=email, password_hash="newcomer-hash"))
    journal = world.extensions["shop"].runtime.journal
    journal.record(TO_MYSQL, [("user", newcomer.id)], "test", "written to DynamoDB only")
    report = jobs.reverse_copy(world.extensions["shop"])
    assert [(e, int(i)) for e, i, _ in report.failed] == [("user", newcomer.id)]
    # A collision either way: on its email (another id holds it) or, where the ids meet, on its id.
    assert "belongs to user" in str(report.failed[0][2]) or "in MySQL and" in str(report.failed[0][2])
    assert mysql.users.get_by_id(holder.id).password_hash == "holder-hash"
    assert journal.is_pending("user", newcomer.id)  # still waiting, for an operator to resolve
    # An operator's resolution, so the rest of this dataset's journey can go on: the newcomer goes.
    from shop.migration.entities.users import _delete
    _delete(world.extensions["shop"].dynamo, newcomer)
    journal.close(next(e for e in journal.pending(TO_MYSQL) if e.entity_id == str(newcomer.id)))


def test_repair_never_replays_an_older_mysql_copy_over_dynamodb(world, control):
    """Where DynamoDB holds writes MySQL lacks (phase 5, or an entry towards MySQL), replaying
    MySQL's copy into DynamoDB would undo them (review finding)."""
    _to(control, 1)
    mysql, ddb = _stores(world)
    _, _, p = _dual_written_product(world)
    ddb.products.set_inventory(p.id, 40)  # DynamoDB moved on (phase 5)
    journal = world.extensions["shop"].runtime.journal
    journal.record(TO_DYNAMODB, [("product", p.id)], "test", "a mirror that timed out earlier")
    report = jobs.repair(world.extensions["shop"], authority="dynamodb")
    assert ddb.products.get_by_id(p.id).inventory_quantity == 40
    assert ("product", str(p.id)) in {(e, str(i)) for e, i, _ in report.left}
    jobs.repair(world.extensions["shop"])  # with MySQL authoritative again, the entry is replayed
    assert ddb.products.get_by_id(p.id).inventory_quantity == 4 and not journal.is_pending("product", p.id)


def test_replaying_a_lost_rename_or_email_change_rewrites_the_copies_products_show(world, control):
    """A category rename or a seller's email change whose mirror failed is journaled under the
    category or the user; replaying it must also rewrite the names copied into their products,
    or every dual read of those products mismatches (review finding)."""
    _to(control, 1)
    mysql, ddb = _stores(world)
    owner, cat, p = _dual_written_product(world)
    mysql.categories.update(cat.id, {"name": cat.name + " renamed"})  # the mirrors were lost
    mysql.users.update_profile(owner.id, {"email": "moved-" + owner.email})
    journal = world.extensions["shop"].runtime.journal
    journal.record(TO_DYNAMODB, [("category", cat.id), ("user", owner.id)], "test", "mirrors timed out")
    jobs.repair(world.extensions["shop"])
    shown = ddb.products.get_by_id(p.id)
    assert (shown.category_name, shown.seller_email) == (cat.name + " renamed", "moved-" + owner.email)
    sync = jobs.copier_for(world.extensions["shop"])
    assert not sync.compare("product", p.id) and not sync.compare("category", cat.id)


def test_a_state_written_while_mysql_was_down_is_caught_up(world):
    """DynamoDB took version N+1 while MySQL was down; the next change must write N+2 to both,
    not fail forever as a concurrent change (review finding)."""
    import json
    from shop.repositories.dynamodb.client import encode
    forget_phase(world)
    store = world.extensions["shop"].runtime.phase.store
    v1 = store.save({"flags": "READ_MYSQL,WRITE_MYSQL", "phase": 1}, 0)
    dynamo = world.extensions["shop"].dynamo
    dynamo.call("put_item", TableName=dynamo.table("counters"), Item=encode({
        "PK": "MIGRATION#server", "version": v1 + 1,
        "doc": json.dumps({"flags": "READ_MYSQL,WRITE_MYSQL,WRITE_DDB", "phase": 2})}))
    state = store.load(world.extensions["shop"].runtime.default_flags)
    assert (state.version, state.phase) == (v1 + 1, 2)  # the newer copy wins
    v3 = store.save({**state.doc, "flags": "READ_MYSQL,WRITE_MYSQL", "phase": 1}, state.version)
    assert v3 == v1 + 2 and store._mysql()[0] == v3 and store._dynamodb()[0] == v3
    forget_phase(world)


def test_repair_divergent_in_phase_4_copies_from_mysql(world, control):
    """Phase 4 reads DynamoDB but writes MySQL first: a write a killed worker left in MySQL alone
    is copied to DynamoDB, not "left alone" as if DynamoDB were the truth (found by make journey)."""
    _to(control, 1)
    mysql, ddb = _stores(world)
    _to(control, 2)
    for step in (3, 4):  # this module's dataset keeps other tests' leftovers: the gates are not the point here
        _to(control, step, force=True, reason="test")
    lost = mysql.categories.create(unique("Killed mid-write "), None)  # MySQL committed, DynamoDB never saw it
    report = jobs.repair(world.extensions["shop"], divergent=True)
    assert ddb.categories.get_by_id(lost.id).name == lost.name
    assert ("category", lost.id) not in {(e, int(i)) for e, i, _ in report.left}
    _to(control, 1)


def _lagging_phase_5_write(app, product_id, stock):
    """What a worker still in phase 5 does after the switch: DynamoDB alone, journaled."""
    _, ddb = _stores(app)
    ddb.products.set_inventory(product_id, stock)
    app.extensions["shop"].runtime.journal.record(TO_MYSQL, [("product", product_id)], "ProductRepository.set_inventory",
                                                  "written to DynamoDB only")


def test_leaving_phase_5_no_write_lands_on_a_stale_mysql_row(world, control, monkeypatch):
    """Journey finding: after 5 -> 4, a write went to MySQL first on a row still lacking phase
    5's writes, and the late copy back, reading DynamoDB just before a checkout, put the older
    stock into MySQL (DualReadMismatch in phase 3 later). While MySQL is behind, writes touching
    what it lacks go to DynamoDB first and are copied back under the entity's lock."""
    import threading

    from shop.migration.entities.products import Products

    state = world.extensions["shop"]
    routed, journal = state.repos, state.runtime.journal
    mysql, ddb = _stores(world)
    _to(control, 1, force=True)
    _, _, p = _dual_written_product(world, stock=10)
    _, _, untouched = _dual_written_product(world, stock=10)
    with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):
        buyer = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        routed.carts.add_item(buyer.id, p.id, 1)
    _to(control, 5, force=True)
    _to(control, 4, force=True, settle=False)  # switched; the late copy has not run
    assert control.view.refresh().doc["mysql_behind_since"]

    # A seller's edit: its mirror stores MySQL's whole row, which carried MySQL's stale stock
    # (10) into DynamoDB and lost the sale phase 5 made.
    _lagging_phase_5_write(world, p.id, 7)
    routed.products.update(p.id, {"name": "renamed"})
    for store in (mysql, ddb):
        got = store.products.get_by_id(p.id)
        assert (got.name, got.inventory_quantity) == ("renamed", 7), store
    assert not journal.is_pending("product", p.id)
    # A new account while some user is journaled (names must be free among users MySQL lacks)
    # goes to DynamoDB first; its journal record lost, the writer copies it all the same.
    journal.record(TO_MYSQL, [("user", buyer.id)], "UserRepository.update_profile", "written to DynamoDB only")

    def lost(*args, **kwargs):
        raise RuntimeError("the counters table is failing")
    monkeypatch.setattr(journal, "record", lost)
    newcomer = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    monkeypatch.undo()
    assert mysql.users.get_by_id(newcomer.id).username == ddb.users.get_by_id(newcomer.id).username
    # What MySQL does not lack is written MySQL first, as in phase 4.
    _lagging_phase_5_write(world, p.id, 6)
    routed.products.update(untouched.id, {"name": "still MySQL first"})
    assert not journal.is_pending("product", untouched.id)

    # The late copy reads DynamoDB (stock 6); a checkout lands before it writes MySQL.
    raced, fired = [], []
    real = Products.to_mysql

    def reverse_with_a_checkout_between(self, copier, product_id, deleted):
        if fired:  # the checkout's own copy back
            return real(self, copier, product_id, deleted)
        fired.append(product_id)
        got = copier.ddb.products.get_by_id(product_id)
        checkout = threading.Thread(target=lambda: raced.append(routed.orders.checkout(buyer.id)))
        checkout.start()
        checkout.join(1.0)  # it waits on this entity's lock, so it cannot land in between
        monkeypatch.setattr(copier.ddb.products, "get_by_id", lambda _id: got, raising=False)
        try:
            return real(self, copier, product_id, deleted)
        finally:
            monkeypatch.delattr(copier.ddb.products, "get_by_id")
            checkout.join(30)

    monkeypatch.setattr(Products, "to_mysql", reverse_with_a_checkout_between)
    late = control.catch_up()
    monkeypatch.undo()
    assert raced and not late.failed, late.failed
    assert poll(lambda: not journal.is_pending("product", p.id), timeout=10, what="the checkout's copy back")
    assert mysql.products.get_by_id(p.id).inventory_quantity == ddb.products.get_by_id(p.id).inventory_quantity == 5
    sync = jobs.copier_for(state)
    assert not sync.compare("product", p.id) and not sync.compare("order", raced[0].id)
    assert not control.view.refresh().doc.get("mysql_behind_since")  # caught up: MySQL first again
    _to(control, 1, force=True)


def test_a_verify_mark_keeps_divergence_and_writes_since_apart(world, control):
    """Verify after a write one store took and the journal holds (what the late copy back or
    `repair` copies) says "written since", not "divergent", in the CLI, the mark, `phase status`
    and the page; only the unexplained difference is divergent. Kinds are said in words."""
    _to(control, 1)
    _to(control, 2)
    _backfill_and_verify(world, control)
    state = world.extensions["shop"]
    mysql, _ = _stores(world)
    with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):
        journaled = state.repos.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        lost = state.repos.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    with mysql.users.db.cursor(write=True) as cur:  # MySQL moves on; DynamoDB misses both
        cur.execute("UPDATE users SET first_name = 'J' WHERE id IN (%s, %s)", (journaled.id, lost.id))
    state.runtime.journal.record(TO_DYNAMODB, [("user", journaled.id)], "pytest", "a dual write that failed")
    only_mysql = mysql.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    runner = world.test_cli_runner()
    out = runner.invoke(args=["verify"])
    assert out.exit_code == 1 and "divergent: 2 of" in out.output and "; 1 more written since" in out.output
    lines = {line.split(":")[0].strip(): line for line in out.output.splitlines() if line.startswith("  user ")}
    assert "first_name" in lines[f"user {journaled.id}"] and "written since, journaled" in lines[f"user {journaled.id}"]
    assert "first_name" in lines[f"user {lost.id}"] and "journaled" not in lines[f"user {lost.id}"]
    assert f"user {only_mysql.id}: the whole record: present only in MySQL" in out.output
    assert "(value)" not in out.output and "missing_item" not in out.output
    mark = control.view.refresh().mark("verify")
    assert (mark["divergent"], mark["written_since"]) == (2, 1)
    status = runner.invoke(args=["phase", "status"]).output
    assert re.search(r"last verify: finished \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, \d+ compared, 2 divergent, 1 written "
                     r"since \(journaled", status), status
    html = world.test_client().get("/flags").get_data(as_text=True)
    assert "<strong>2 divergent</strong>" in html and "1 written since (journaled" in html
    assert re.search(r"Changed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by", html)
    jobs.repair(state, divergent=True)
    assert jobs.verify(state, control=control).ok
    _to(control, 1)


def test_the_page_shows_a_switch_in_progress_and_reloads_while_a_gate_waits(world, control):
    _to(control, 1)
    # Settings are frozen: a second app on the same stores, with a window to wait for.
    app = create_app(replace(world.extensions["shop"].settings, gate_min_comparisons=50, phase_refresh_ms=3000))
    try:
        ctl = PhaseControl(app.extensions["shop"])
        _to(ctl, 2)
        html = app.test_client().get("/flags").get_data(as_text=True)
        assert 'id="switching"' in html and '<meta http-equiv="refresh" content="5">' in html
        _backfill_and_verify(app, ctl)
        _to(ctl, 3)
        html = app.test_client().get("/flags").get_data(as_text=True)
        assert "phase 3 gathers comparisons (no reads in phase 3 yet: an idle window proves nothing)" in html
        assert '<meta http-equiv="refresh"' in html and "stop reloading" in html
        assert '<meta http-equiv="refresh"' not in app.test_client().get("/flags?refresh=off").get_data(as_text=True)
        _to(ctl, 1)
        # A run under way (as the copy back of a move out of phase 5 is, before the switch) is shown.
        from shop.migration.checkpoint import Checkpoints
        Checkpoints(app.extensions["shop"].db).open("pytest-copy", 2, lambda n: {})
        try:
            html = app.test_client().get("/flags").get_data(as_text=True)
            assert re.search(r"Run under way: <strong>pytest-copy</strong>, started \S+ \S+ UTC", html)
            assert "a run is under way" in html
        finally:
            Checkpoints(app.extensions["shop"].db).restart("pytest-copy")
    finally:
        app.extensions["shop"].runtime.close()
