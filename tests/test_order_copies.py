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
from shop.migration import runs
from shop.migration.journal import TO_DYNAMODB
from shop.repositories.dynamodb import keys
from shop.repositories.dynamodb.client import encode
from shop.repositories.dynamodb.order_copies import rewrite_order_copies
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
    sync = runs.make_sync(world.extensions["shop"])
    found = sync.compare("order", order.id)
    assert [d.path for d in found] == [f"items[id={order.items[0].id}].product.name"]
    world.extensions["shop"].runtime.journal.record(TO_DYNAMODB, [("product", p.id)], "test", "mirror timed out")
    runs.repair(world.extensions["shop"])
    assert _shown(ddb.orders.get_by_id(order.id))[p.id][0] == "Renamed, mirror lost"
    assert not sync.compare("order", order.id) and not sync.compare("product", p.id)
