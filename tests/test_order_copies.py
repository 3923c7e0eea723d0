"""An order read from DynamoDB is one GetItem (issue 12, part 2): the order item holds copies of
what it shows of its products, and the writes that change those (a product's name or
description, its category, a category's name) rewrite them in every order holding the product.
These tests check the copies against MySQL's join, through the races that could leave one stale.
Requests are counted with a botocore event hook on the real client (tests/test_dynamodb_reads.py).
"""
from __future__ import annotations

from decimal import Decimal

import pytest

from shop import Repositories
from shop.aspects import PRESETS, use_flags
from shop.aspects.compare import diff, own
from shop.domain import NewProduct, NewUser
from shop.errors import ValidationError
from shop.migration import jobs
from shop.migration.journal import TO_DYNAMODB
from shop.repositories.dynamodb import keys
from shop.repositories.dynamodb.client import encode
from shop.repositories.dynamodb.copies import rewrite_order_copies
from shop.repositories.dynamodb.orders import MAX_LINES

from .conftest import unique
from .test_dynamodb_reads import Requests
from .test_migration import _dual_written_product, _stores, _to, world, control  # noqa: F401 - fixtures

DUAL_WRITE = PRESETS[1].flags  # dual write, read MySQL
DUAL_READ = PRESETS[2].flags


@pytest.fixture
def ddb(store_dynamo):
    return Repositories.dynamodb(store_dynamo)


@pytest.fixture
def requests_of(store_dynamo):
    r = Requests(store_dynamo.client)
    yield r.during
    r.close()


def _shop(ddb, n=2):
    seller = ddb.users.set_seller(ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com",
                                                           password_hash="h")).id, True)
    cat = ddb.categories.create(unique("Copies "), None)
    products = [ddb.products.create(seller.id, NewProduct(category_id=cat.id, name=unique(f"P{i} "),
                                                          description=f"about {i}", price=Decimal("2.50"),
                                                          inventory_quantity=40))
                for i in range(n)]
    return seller, cat, products


def _order(ddb, buyer_id, products):
    for p in products:
        ddb.carts.add_item(buyer_id, p.id, 1)
    return ddb.orders.checkout(buyer_id)


def _shown(order):
    return {i.product_id: (i.product.name, i.product.description, i.product.category_name,
                           i.product.seller_username) for i in order.items}


def test_an_order_is_one_request_and_a_users_orders_one_query(ddb, requests_of):
    seller, cat, products = _shop(ddb, 3)
    order = _order(ddb, seller.id, products)
    read, sent = requests_of(lambda: ddb.orders.get_by_id(order.id))
    assert sent == {"GetItem": 1}
    assert _shown(read) == {p.id: (p.name, p.description, cat.name, seller.username) for p in products}
    page, sent = requests_of(lambda: ddb.orders.list_by_user(seller.id, 1, 10))
    assert sent == {"Query": 1} and _shown(page.items[0]) == _shown(read)


def test_renames_reach_every_order_holding_the_product(ddb):
    seller, cat, (p1, p2) = _shop(ddb)
    buyer = ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    first, second = _order(ddb, seller.id, [p1, p2]), _order(ddb, buyer.id, [p1])
    other = ddb.categories.create(unique("Other "), None)
    ddb.products.update(p1.id, {"name": "Renamed", "description": None})
    ddb.products.update(p2.id, {"category_id": other.id})
    renamed = ddb.categories.update(other.id, {"name": unique("Other renamed ")})
    for order in (first, second):
        shown = _shown(ddb.orders.get_by_id(order.id))
        assert shown[p1.id] == ("Renamed", None, cat.name, seller.username)
        if p2.id in shown:
            assert shown[p2.id] == (p2.name, p2.description, renamed.name, seller.username)
    stock_only = ddb.products.set_inventory(p1.id, 3)  # what orders do not show is not fanned out
    assert stock_only.inventory_quantity == 3 and _shown(ddb.orders.get_by_id(first.id))[p1.id][0] == "Renamed"


def test_a_rename_between_a_checkouts_read_and_its_commit_reaches_the_order(ddb, store_dynamo):
    """The checkout copied the old name; the rename's fan-out ran before the order existed.
    The stock update's condition on the copied names fails the transaction, which reads again."""
    seller, _, (p1, _) = _shop(ddb)
    ddb.carts.add_item(seller.id, p1.id, 2)
    fired = []

    def rename_once(**kwargs):
        if not fired:  # the rename's own transaction passes through here too
            fired.append(True)
            ddb.products.update(p1.id, {"name": "Renamed in between"})
    store_dynamo.client.meta.events.register("before-call.dynamodb.TransactWriteItems", rename_once)
    try:
        order = ddb.orders.checkout(seller.id)
    finally:
        store_dynamo.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", rename_once)
    assert fired and _shown(ddb.orders.get_by_id(order.id))[p1.id][0] == "Renamed in between"
    assert ddb.products.get_by_id(p1.id).inventory_quantity == 38  # the stock moved once


def test_a_fan_out_overtaken_by_a_later_rename_ends_with_the_later_name(ddb, store_dynamo):
    """Two renames' fan-outs racing: each reads the product again when done and goes round
    once more if it moved, so an older name never stays in an order."""
    seller, _, (p1, _) = _shop(ddb)
    order = _order(ddb, seller.id, [p1])
    catalog = store_dynamo.table("catalog")
    store_dynamo.call("update_item", TableName=catalog, Key=encode(keys.product(p1.id)),
                      UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                      ExpressionAttributeValues=encode({":n": "First"}))
    seen = []

    def later_rename(**kwargs):  # lands while the first fan-out writes the orders
        if not seen:
            seen.append(1)
            store_dynamo.client.update_item(TableName=catalog, Key=encode(keys.product(p1.id)),
                                            UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                                            ExpressionAttributeValues=encode({":n": "Second"}))
    store_dynamo.client.meta.events.register("after-call.dynamodb.UpdateItem", later_rename)
    try:
        assert rewrite_order_copies(store_dynamo, p1.id) == 2  # First, then Second
    finally:
        store_dynamo.client.meta.events.unregister("after-call.dynamodb.UpdateItem", later_rename)
    assert _shown(ddb.orders.get_by_id(order.id))[p1.id][0] == "Second"


def test_an_order_written_before_the_copies_is_joined_when_read(ddb, store_dynamo, requests_of):
    seller, cat, (p1, p2) = _shop(ddb)
    order = _order(ddb, seller.id, [p1, p2])
    store_dynamo.call("update_item", TableName=store_dynamo.table("orders"), Key=encode(keys.order(order.id)),
                      UpdateExpression="REMOVE products")
    read, sent = requests_of(lambda: ddb.orders.get_by_id(order.id))
    assert sent == {"GetItem": 1, "BatchGetItem": 1} and read == order
    ddb.products.update(p1.id, {"name": "Later"})  # its fan-out leaves the old item alone
    assert _shown(ddb.orders.get_by_id(order.id))[p1.id][0] == "Later"


def test_a_checkout_holds_at_most_max_lines_products(ddb):
    seller, _, products = _shop(ddb, MAX_LINES + 1)
    for p in products:
        ddb.carts.add_item(seller.id, p.id, 1)
    with pytest.raises(ValidationError, match=f"at most {MAX_LINES}"):
        ddb.orders.checkout(seller.id)
    ddb.carts.remove_item(seller.id, products[-1].id)
    order = ddb.orders.checkout(seller.id)  # the largest transaction DynamoDB takes: 1 + 3 x 33 actions
    assert len(order.items) == MAX_LINES and ddb.orders.get_by_id(order.id) == order


def test_dual_written_orders_show_what_mysql_joins_through_renames(stores_app):
    routed, mysql, ddb = stores_app
    with use_flags(DUAL_WRITE):
        seller = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        cat = routed.categories.create(unique("C "), None)
        p = routed.products.create(seller.id, NewProduct(category_id=cat.id, name="Lamp", description="Warm",
                                                         price=Decimal("19.90"), inventory_quantity=5))
        routed.carts.add_item(seller.id, p.id, 1)
        order = routed.orders.checkout(seller.id)
        routed.products.update(p.id, {"name": "Lamp II", "description": "Warmer"})
        routed.categories.update(cat.id, {"name": cat.name + " renamed"})
    m, d = mysql.orders.get_by_id(order.id), ddb.orders.get_by_id(order.id)
    assert diff(own(m), own(d), frozenset({"items"})) == []
    assert _shown(d)[p.id] == ("Lamp II", "Warmer", cat.name + " renamed", seller.username)
    with use_flags(DUAL_READ):
        assert _shown(routed.orders.get_by_id(order.id)) == _shown(m)  # no mismatch raised


@pytest.fixture
def stores_app(app, db, dynamo):
    return app.extensions["shop"].repos, Repositories.mysql(db), Repositories.dynamodb(dynamo)


def test_a_stale_copy_is_a_difference_verify_finds_and_repair_rewrites(world, control):  # noqa: F811
    """A product's rename whose mirror was lost: its orders' copies differ from MySQL's join.
    Verify names the attribute; replaying the product's journal entry rewrites the orders."""
    _to(control, 1)
    mysql, ddb = _stores(world)
    owner, cat, p = _dual_written_product(world, stock=9)
    routed = world.extensions["shop"].repos
    with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):
        routed.carts.add_item(owner.id, p.id, 1)
        order = routed.orders.checkout(owner.id)
    mysql.products.update(p.id, {"name": "Renamed, mirror lost"})
    sync = jobs.copier_for(world.extensions["shop"])
    found = sync.compare("order", order.id)
    assert [d.path for d in found] == [f"items[id={order.items[0].id}].product.name"]
    world.extensions["shop"].runtime.journal.record(TO_DYNAMODB, [("product", p.id)], "test", "mirror timed out")
    jobs.repair(world.extensions["shop"])
    assert _shown(ddb.orders.get_by_id(order.id))[p.id][0] == "Renamed, mirror lost"
    assert not sync.compare("order", order.id) and not sync.compare("product", p.id)


class _Cut(Exception):
    pass


def _cut_after(store_dynamo, n):
    """A hook failing the (n+1)th UpdateItem of an order's copy: a fan-out cut short."""
    seen = []

    def hook(params, **kwargs):
        if params.get("UpdateExpression", "").startswith("SET #ps.#p"):
            seen.append(1)
            if len(seen) > n:
                raise _Cut()
    store_dynamo.client.meta.events.register("provide-client-params.dynamodb.UpdateItem", hook)
    return lambda: store_dynamo.client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", hook)


def test_a_fan_out_cut_short_is_finished_by_the_next_write_even_the_same_rename(ddb, store_dynamo):
    """Review finding: a retried rename changes nothing the product shows, so it would not fan
    out; the token the cut-short fan-out left on the product makes it."""
    seller, cat, (p1, _) = _shop(ddb)
    buyers = [ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
              for _ in range(3)]
    orders = [_order(ddb, b.id, [p1]) for b in buyers]
    undo = _cut_after(store_dynamo, 1)
    try:  # the rename is saved: its caller hears so, whatever became of the fan-out after it
        assert ddb.products.update(p1.id, {"name": "Cut short"}).name == "Cut short"
    finally:
        undo()
    assert sorted(_shown(ddb.orders.get_by_id(o.id))[p1.id][0] for o in orders).count("Cut short") == 1
    item = store_dynamo.get(store_dynamo.table("catalog"), keys.product(p1.id))
    assert item["name"] == "Cut short" and item.get("copies_pending")
    ddb.products.update(p1.id, {"name": "Cut short"})  # the shopper's retry
    assert {_shown(ddb.orders.get_by_id(o.id))[p1.id][0] for o in orders} == {"Cut short"}
    assert "copies_pending" not in store_dynamo.get(store_dynamo.table("catalog"), keys.product(p1.id))


def test_a_category_rename_cut_short_is_finished_by_its_retry(ddb, store_dynamo):
    seller, cat, products = _shop(ddb, 2)
    order = _order(ddb, seller.id, products)
    undo = _cut_after(store_dynamo, 0)
    try:
        assert ddb.categories.update(cat.id, {"name": cat.name + " v2"}).name == cat.name + " v2"
    finally:
        undo()
    assert cat.name + " v2" not in {s[2] for s in _shown(ddb.orders.get_by_id(order.id)).values()}
    ddb.categories.update(cat.id, {"name": cat.name + " v2"})
    assert {s[2] for s in _shown(ddb.orders.get_by_id(order.id)).values()} == {cat.name + " v2"}
    assert "copies_pending" not in store_dynamo.get(store_dynamo.table("catalog"), keys.category(cat.id))


def test_a_fan_out_that_cannot_settle_says_so_and_leaves_its_token(ddb, store_dynamo, monkeypatch, caplog):
    """A product renamed again during every round: the fan-out stops with a ConflictError
    instead of returning as if done; the rename itself is saved and answered as saved, the
    failure logged, and the product keeps its token for the next write."""
    from shop.errors import ConflictError
    from shop.repositories.dynamodb import copies
    monkeypatch.setattr(copies, "_SETTLE_SECONDS", 0)
    seller, _, (p1, _) = _shop(ddb)
    order = _order(ddb, seller.id, [p1])
    catalog = store_dynamo.table("catalog")
    names = iter(f"Moving {n}" for n in range(100))

    inside = []

    def rename_again(**kwargs):
        if inside:  # its own UpdateItem passes through here too
            return
        inside.append(1)
        try:
            store_dynamo.client.update_item(TableName=catalog, Key=encode(keys.product(p1.id)),
                                            UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                                            ExpressionAttributeValues=encode({":n": next(names)}))
        finally:
            inside.clear()
    store_dynamo.client.meta.events.register("after-call.dynamodb.UpdateItem", rename_again)
    try:
        with pytest.raises(ConflictError, match="kept changing"):
            copies.rewrite_order_copies(store_dynamo, p1.id)
        with caplog.at_level("WARNING", "shop.copies"):
            assert ddb.products.update(p1.id, {"name": "Start"}) is not None
    finally:
        store_dynamo.client.meta.events.unregister("after-call.dynamodb.UpdateItem", rename_again)
    assert any(getattr(r, "event", None) == "copies_pending" and "kept changing" in r.error for r in caplog.records)
    assert store_dynamo.get(catalog, keys.product(p1.id)).get("copies_pending")
    ddb.products.update(p1.id, {"description": "quiet now"})
    now = ddb.products.get_by_id(p1.id)
    assert _shown(ddb.orders.get_by_id(order.id))[p1.id][:2] == (now.name, "quiet now")


def test_an_order_copied_from_mysql_settles_on_the_products_current_names(world, control):  # noqa: F811
    """Backfill and repair copy an order with MySQL's join read earlier; a rename whose fan-out
    ran before the order item existed is caught by settling the copies after the write."""
    from shop.migration.copies import Copier
    _to(control, 1)
    mysql, ddb = _stores(world)
    owner, cat, p = _dual_written_product(world, stock=9)
    state = world.extensions["shop"]
    with use_flags("READ_MYSQL,WRITE_MYSQL"):  # an order from before the migration: MySQL only
        state.repos.carts.add_item(owner.id, p.id, 1)
        order = state.repos.orders.checkout(owner.id)
    stale = mysql.orders.get_by_id(order.id)  # the backfill's read
    with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):  # the rename, dual-written; no order in DynamoDB yet
        state.repos.products.update(p.id, {"name": "Renamed before the copy"})
    sync = Copier(state.db, mysql, ddb, state.dynamo)
    from shop.migration.pages import ForwardWriter
    writer = ForwardWriter(sync)
    outcome = writer.write("order", writer.plan("order", {order.id: stale}, {}))
    assert outcome == {order.id: "copied"}
    assert _shown(ddb.orders.get_by_id(order.id))[p.id][0] == "Renamed before the copy"
    assert not sync.compare("order", order.id)
    line = state.dynamo.get(state.dynamo.table("orders"), keys.order_line(p.id, order.id))
    assert line is not None and int(line["order_id"]) == order.id


def test_an_order_too_large_with_its_copies_is_written_without_them():
    """MySQL has no line limit: an order of many products with long descriptions keeps its
    lines and is joined when read, rather than failing to copy."""
    from datetime import datetime
    from shop.domain import Order, OrderedProduct, OrderItem
    from shop.repositories.dynamodb.client import encode as enc, item_size
    from shop.repositories.dynamodb.orders import order_item
    when = datetime(2026, 1, 1)
    lines = [OrderItem(id=n, order_id=1, product_id=n, quantity=1, price_at_time=Decimal("1.00"),
                       product=OrderedProduct(id=n, seller_id=1, name=f"P{n}", description="\U0001F600" * 2000,
                                              category_name="C", seller_username="s"))
             for n in range(1, 61)]
    item = order_item(Order(id=1, user_id=1, total_amount=Decimal("60.00"), status="completed",
                            created_at=when, updated_at=when, items=lines))
    assert "products" not in item and len(item["items"]) == 60 and item_size(enc(item)) < 400 * 1024
    small = order_item(Order(id=2, user_id=1, total_amount=Decimal("1.00"), status="completed",
                             created_at=when, updated_at=when, items=lines[:3]))
    assert set(small["products"]) == {"1", "2", "3"}


def test_a_checkout_between_a_category_rename_and_its_products_copy_shows_the_new_name(ddb, store_dynamo):
    """The product never ordered when the rename began: the checkout lands before the product's
    copy is rewritten (so it copies the old name), and the rewrite, seeing the product now
    counted as ordered, goes on to that order."""
    seller, cat, (p1,) = _shop(ddb, 1)
    ddb.carts.add_item(seller.id, p1.id, 1)
    done = []

    def checkout_first(params, **kwargs):
        if "#owner" in params.get("ConditionExpression", "") and not done:
            done.append(ddb.orders.checkout(seller.id))
    store_dynamo.client.meta.events.register("provide-client-params.dynamodb.UpdateItem", checkout_first)
    try:
        renamed = ddb.categories.update(cat.id, {"name": cat.name + " new"})
    finally:
        store_dynamo.client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", checkout_first)
    (order,) = done
    assert order.items[0].product.category_name == cat.name  # copied before the product's rewrite
    assert _shown(ddb.orders.get_by_id(order.id))[p1.id][2] == renamed.name


def test_an_email_fan_out_cut_short_is_finished_by_the_retry(ddb, store_dynamo):
    """The older fan-out (a seller's email into its products) has the same token."""
    seller, _, products = _shop(ddb, 3)
    seen = []

    def cut(params, **kwargs):
        if "#owner" in params.get("ConditionExpression", ""):
            seen.append(1)
            if len(seen) > 1:
                raise _Cut()
    store_dynamo.client.meta.events.register("provide-client-params.dynamodb.UpdateItem", cut)
    moved = "moved-" + seller.email
    try:
        assert ddb.users.update_profile(seller.id, {"email": moved}).email == moved
    finally:
        store_dynamo.client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", cut)
    assert sorted(ddb.products.get_by_id(p.id).seller_email == moved for p in products) == [False, False, True]
    ddb.users.update_profile(seller.id, {"email": moved})  # the retry changes nothing in the profile
    assert {ddb.products.get_by_id(p.id).seller_email for p in products} == {moved}
    assert "copies_pending" not in store_dynamo.get(store_dynamo.table("users"), keys.user(seller.id))


def test_repair_copies_finishes_every_fan_out_left_pending(ddb, store_dynamo):
    """Phase 5, nobody writes the product again: `repair --copies` finds the token and finishes."""
    from shop.repositories.dynamodb.copies import finish_pending
    seller, cat, (p1, p2) = _shop(ddb)
    order = _order(ddb, seller.id, [p1, p2])
    undo = _cut_after(store_dynamo, 0)
    try:
        ddb.products.update(p1.id, {"name": "Left pending"})
        ddb.categories.update(cat.id, {"name": cat.name + " left"})
    finally:
        undo()
    assert _shown(ddb.orders.get_by_id(order.id))[p1.id][0] != "Left pending"
    finished = finish_pending(store_dynamo)
    assert finished["product"] >= 1 and finished["category"] >= 1
    shown = _shown(ddb.orders.get_by_id(order.id))
    assert shown[p1.id][0] == "Left pending" and {s[2] for s in shown.values()} == {cat.name + " left"}
    catalog = store_dynamo.table("catalog")
    assert not store_dynamo.get(catalog, keys.product(p1.id)).get("copies_pending")
    assert not store_dynamo.get(catalog, keys.category(cat.id)).get("copies_pending")


def test_settling_never_undoes_a_newer_fan_out(ddb, store_dynamo):
    """settle read the product showing X; a rename to Y fanned out into the order before settle
    wrote: the copy it put is no longer there, so it leaves Y."""
    from dataclasses import replace as with_
    from shop.repositories.dynamodb.copies import settle
    seller, _, (p1, _) = _shop(ddb)
    order = _order(ddb, seller.id, [p1])
    stale = with_(order, items=[with_(i, product=with_(i.product, name="As put")) for i in order.items])
    table = store_dynamo.table("orders")
    store_dynamo.call("update_item", TableName=table, Key=encode(keys.order(order.id)),
                      UpdateExpression="SET #ps.#p.#n = :n",
                      ExpressionAttributeNames={"#ps": "products", "#p": str(p1.id), "#n": "name"},
                      ExpressionAttributeValues=encode({":n": "Newer, from a fan-out"}))
    assert settle(store_dynamo, [stale]) == 0  # the product shows p1.name; the order no longer holds "As put"
    assert _shown(ddb.orders.get_by_id(order.id))[p1.id][0] == "Newer, from a fan-out"
    store_dynamo.call("update_item", TableName=table, Key=encode(keys.order(order.id)),
                      UpdateExpression="SET #ps.#p.#n = :n",
                      ExpressionAttributeNames={"#ps": "products", "#p": str(p1.id), "#n": "name"},
                      ExpressionAttributeValues=encode({":n": "As put"}))
    assert settle(store_dynamo, [stale]) == 1 and _shown(ddb.orders.get_by_id(order.id))[p1.id][0] == p1.name


def test_a_category_fan_out_that_cannot_settle_keeps_its_token(ddb, store_dynamo, monkeypatch):
    """Like the orders' fan-out: a category renamed again on every round is not reported done."""
    from shop.repositories.dynamodb import copies
    monkeypatch.setattr(copies, "_ROUNDS", 1)
    seller, cat, products = _shop(ddb, 1)
    catalog = store_dynamo.table("catalog")
    inside = []

    def rename_again(params, **kwargs):  # the owner renamed again while its products are rewritten
        if "#owner" in params.get("ConditionExpression", "") and not inside:
            inside.append(1)
            store_dynamo.client.update_item(TableName=catalog, Key=encode(keys.category(cat.id)),
                                            UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                                            ExpressionAttributeValues=encode({":n": cat.name + " again"}))
    store_dynamo.client.meta.events.register("provide-client-params.dynamodb.UpdateItem", rename_again)
    try:
        assert ddb.categories.update(cat.id, {"name": cat.name + " v2"}).name == cat.name + " v2"  # saved
    finally:
        store_dynamo.client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", rename_again)
    assert store_dynamo.get(catalog, keys.category(cat.id)).get("copies_pending")
    ddb.categories.update(cat.id, {"name": cat.name + " again"})  # the next write finishes it
    assert ddb.products.get_by_id(products[0].id).category_name == cat.name + " again"
    assert not store_dynamo.get(catalog, keys.category(cat.id)).get("copies_pending")
