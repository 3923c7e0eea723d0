"""DynamoDB read costs that the contract suite cannot see: requests per item read, listing
totals that survive a copy re-putting products, their rebuild, and the bounded filtered read.
Requests are counted with a botocore event hook on the real client."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import Decimal

import pytest

from shop import Repositories
from shop.domain import NewProduct, NewUser, ProductFilters
from shop.repositories.dynamodb import Dynamo, keys, listing_counts
from shop.repositories.dynamodb.client import encode

from .conftest import unique


@pytest.fixture
def ddb(store_dynamo):
    return Repositories.dynamodb(store_dynamo)


class Requests:
    """Every DynamoDB request the client sends, by operation name."""

    def __init__(self, client):
        self.client, self.seen = client, Counter()
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model, **kwargs):
        self.seen[model.name] += 1

    def during(self, fn):
        self.seen.clear()
        result = fn()
        return result, dict(self.seen)

    def close(self):
        self.client.meta.events.unregister("before-call.dynamodb", self._count)


@pytest.fixture
def requests_of(store_dynamo):
    r = Requests(store_dynamo.client)
    yield r.during
    r.close()


@pytest.fixture
def shop(ddb):
    seller = ddb.users.set_seller(ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com",
                                                           password_hash="h")).id, True)
    cat = ddb.categories.create(unique("Reads "), None)
    products = [ddb.products.create(seller.id, NewProduct(category_id=cat.id, name=unique(f"P{i} "),
                                                          price=Decimal("3.00"), inventory_quantity=9))
                for i in range(3)]
    return seller, cat, products


def test_an_item_read_is_one_request(ddb, shop, requests_of):
    seller, cat, (p1, p2, p3) = shop
    product, sent = requests_of(lambda: ddb.products.get_by_id(p1.id))
    assert sent == {"GetItem": 1} and product.category_name == cat.name and product.seller_email == seller.email
    assert requests_of(lambda: ddb.users.get_by_id(seller.id))[1] == {"GetItem": 1}
    for p in (p1, p2):
        ddb.carts.add_item(seller.id, p.id, 1)
    cart, sent = requests_of(lambda: ddb.carts.list_items(seller.id))
    assert sent == {"Query": 1, "BatchGetItem": 1} and {i.product.category_name for i in cart} == {cat.name}
    line, sent = requests_of(lambda: ddb.carts.get_item(seller.id, p1.id))
    assert sent == {"BatchGetItem": 1} and line.product.seller_username == seller.username
    order = ddb.orders.checkout(seller.id)
    # An order holds copies of what it shows of its products (tests/test_order_copies.py).
    read, sent = requests_of(lambda: ddb.orders.get_by_id(order.id))
    assert sent == {"GetItem": 1} and {i.product.category_name for i in read.items} == {cat.name}


def test_a_page_reads_about_page_times_limit_entries_and_no_more(ddb, shop, requests_of, store_dynamo):
    seller, cat, products = shop
    scanned = []
    hook = lambda parsed, **kw: scanned.append(parsed.get("ScannedCount", 0))  # noqa: E731
    store_dynamo.client.meta.events.register("after-call.dynamodb.Query", hook)
    try:
        page, sent = requests_of(lambda: ddb.products.list_products(ProductFilters(category_id=cat.id), 2, 1))
    finally:
        store_dynamo.client.meta.events.unregister("after-call.dynamodb.Query", hook)
    assert [p.id for p in page.items] == [products[1].id] and page.total == 3
    # children of the category, the category's partition (2 entries), the counters
    assert sent == {"Query": 2, "BatchGetItem": 1} and scanned[-1] == 2


def test_a_copy_that_re_puts_a_product_does_not_count_it_twice(ddb, shop, store_dynamo):
    seller, cat, (p1, _, _) = shop
    total = lambda: ddb.products.list_products(ProductFilters(category_id=cat.id), 1, 1).total  # noqa: E731
    assert total() == 3
    # What repair and backfill do: delete the product item, create it again from MySQL's copy.
    store_dynamo.call("delete_item", TableName=store_dynamo.table("catalog"), Key=encode(keys.product(p1.id)))
    again = ddb.products.create(seller.id, NewProduct(category_id=cat.id, name=p1.name, price=p1.price,
                                                      inventory_quantity=p1.inventory_quantity), mirror_of=p1)
    assert again == p1 and total() == 3


def test_rebuild_recounts_from_the_products(ddb, shop, store_dynamo):
    seller, cat, _ = shop
    store_dynamo.call("update_item", TableName=store_dynamo.table("catalog"),
                      Key=encode(keys.listing_count(f"CATEGORY#{cat.id}")), UpdateExpression="SET n = :n",
                      ExpressionAttributeValues=encode({":n": 40}))
    assert ddb.products.list_products(ProductFilters(category_id=cat.id), 1, 1).total == 40  # drifted
    counts = listing_counts.rebuild(store_dynamo)
    assert counts[f"CATEGORY#{cat.id}"] == 3 and counts[f"SELLER#{seller.id}"] == 3
    assert ddb.products.list_products(ProductFilters(category_id=cat.id), 1, 1).total == 3


def test_a_filtered_listing_reads_a_bounded_window_newest_first(store_dynamo, shop):
    seller, cat, _ = shop
    tag = unique("bound")
    made = [Repositories.dynamodb(store_dynamo).products.create(
        seller.id, NewProduct(category_id=cat.id, name=f"{tag} {i}", price=Decimal("1.00"), inventory_quantity=1))
        for i in range(6)]
    narrow = Repositories.dynamodb(Dynamo(replace(store_dynamo.settings, dynamodb_filtered_read_limit=4),
                                          client=store_dynamo.client))
    found = narrow.products.list_products(ProductFilters(search=tag), 1, 10)
    # 4 entries over 4 shards: the newest product of each shard, and only those, are found and counted.
    newest_per_shard = {}
    for p in made:
        newest_per_shard[keys.product_shard(p.id)] = max(p.id, newest_per_shard.get(keys.product_shard(p.id), 0))
    assert {p.id for p in found.items} == set(newest_per_shard.values()) and found.total == len(newest_per_shard)
    wide = Repositories.dynamodb(store_dynamo).products.list_products(ProductFilters(search=tag), 1, 10)
    assert wide.total == 6


def test_a_rename_rewrites_every_copy_also_when_written_several_at_once(ddb, shop):
    seller, cat, products = shop
    more = [ddb.products.create(seller.id, NewProduct(category_id=cat.id, name=unique("M "), price=Decimal("1.00"),
                                                      inventory_quantity=1)) for _ in range(9)]
    renamed = ddb.categories.update(cat.id, {"name": unique("Renamed ")})
    shown = ddb.products.list_products(ProductFilters(category_id=cat.id), 1, 50)
    assert shown.total == 12 and {p.category_name for p in shown.items} == {renamed.name}
    assert {ddb.products.get_by_id(p.id).category_name for p in products + more} == {renamed.name}
