"""Routing: every repository method under each of the five presets, id flow, dual reads."""
from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal

import pytest

from shop import Repositories, create_app
from shop.aspects import PRESETS, DualReadMismatch, Flags, use_flags
from shop.aspects.compare import diff
from shop.migration.copies import seed_counters_from_mysql
from shop.domain import NewProduct, NewUser, ProductFilters
from shop.repositories.dynamodb import IdAllocator, keys
from shop.repositories.dynamodb.client import encode

from .conftest import unique


@pytest.fixture
def stores(app, db, dynamo):
    return app.extensions["shop"].repos, Repositories.mysql(db), Repositories.dynamodb(dynamo)


def _present(flags, read, mysql, ddb):
    m, d = read(mysql), read(ddb)
    assert (m is not None) == flags.write_mysql, ("MySQL", m)
    assert (d is not None) == flags.write_ddb, ("DynamoDB", d)
    if m is not None and d is not None:
        assert diff(m, d, frozenset({"items"})) == [], diff(m, d, frozenset({"items"}))  # same ids, same data
    return m if flags.authority == "mysql" and m is not None else d


def _same(flags, routed_value, read, mysql, ddb):
    """A routed read returns what the authoritative store alone returns."""
    authority = mysql if flags.authority == "mysql" else ddb
    assert diff(routed_value, read(authority), frozenset({"items", "items.items"})) == []


@pytest.mark.parametrize("preset", PRESETS, ids=[p.key for p in PRESETS])
def test_every_method_under_each_preset(stores, db, dynamo, preset):
    routed, mysql, ddb = stores
    f = preset.flags
    if not f.write_mysql:
        seed_counters_from_mysql(db, dynamo, gap=1000)  # the documented step before phase 5
    with use_flags(f):
        seller = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        _present(f, lambda r: r.users.get_by_id(seller.id), mysql, ddb)
        seller = routed.users.set_seller(seller.id, True)
        assert _present(f, lambda r: r.users.get_by_id(seller.id), mysql, ddb).is_seller is True
        seller = routed.users.update_profile(seller.id, {"first_name": "Zoë", "email": unique() + "@y.com"})
        assert _present(f, lambda r: r.users.get_by_email(seller.email), mysql, ddb).first_name == "Zoë"
        for read in (lambda r: r.users.get_by_id(seller.id), lambda r: r.users.get_by_username(seller.username),
                     lambda r: r.users.get_by_email(seller.email)):
            _same(f, read(routed), read, mysql, ddb)

        root = routed.categories.create(unique("Root "), None)
        child = routed.categories.create(unique("Child "), root.id)
        empty = routed.categories.create(unique("Empty "), None)
        child = routed.categories.update(child.id, {"name": child.name + " 2"})
        _present(f, lambda r: r.categories.get_by_id(child.id), mysql, ddb)
        reads = [lambda r: r.categories.get_by_id(child.id), lambda r: r.categories.get_by_name(child.name),
                 lambda r: r.categories.list_children(root.id), lambda r: r.categories.get_path(child.id)]
        if not f.dual_read:
            # Whole-table reads compare whole tables, which other tests filled one store at a time;
            # the API suites run them under dual reads over stores that start empty.
            reads += [lambda r: [c for c in r.categories.list_all() if c.id in (root.id, child.id)],
                      lambda r: [c for c in r.categories.list_roots() if c.id == root.id]]
        for read in reads:
            _same(f, read(routed), read, mysql, ddb)
        assert routed.categories.delete(empty.id) is True
        assert mysql.categories.get_by_id(empty.id) is None and ddb.categories.get_by_id(empty.id) is None

        lamp = routed.products.create(seller.id, NewProduct(category_id=child.id, name=unique("Lamp "),
                                                            price=Decimal("19.90"), inventory_quantity=5))
        spare = routed.products.create(seller.id, NewProduct(category_id=root.id, name=unique("Spare "),
                                                             price=Decimal("1.00"), inventory_quantity=1))
        routed.products.update(lamp.id, {"description": "Warm light", "price": Decimal("21.50")})
        routed.products.set_inventory(lamp.id, 4)
        assert _present(f, lambda r: r.products.get_by_id(lamp.id), mysql, ddb).inventory_quantity == 4
        for read in (lambda r: r.products.get_by_id(lamp.id), lambda r: r.products.seller_stats(seller.id),
                     lambda r: r.products.list_products(ProductFilters(seller_id=seller.id), 1, 1)):
            _same(f, read(routed), read, mysql, ddb)

        buyer = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        routed.carts.add_item(buyer.id, lamp.id, 2)
        routed.carts.add_item(buyer.id, spare.id, 1)
        routed.carts.set_quantity(buyer.id, lamp.id, 3)
        assert _present(f, lambda r: r.carts.get_item(buyer.id, lamp.id), mysql, ddb).quantity == 3
        assert routed.carts.remove_item(buyer.id, spare.id) is True
        for read in (lambda r: r.carts.list_items(buyer.id), lambda r: r.carts.get_item(buyer.id, lamp.id)):
            _same(f, read(routed), read, mysql, ddb)

        order = routed.orders.checkout(buyer.id)
        assert _present(f, lambda r: r.orders.get_by_id(order.id), mysql, ddb).total_amount == Decimal("64.50")
        assert routed.carts.list_items(buyer.id) == []
        routed.orders.set_status(order.id, "pending")
        cancelled = routed.orders.cancel(order.id)
        assert cancelled.status == "cancelled"
        assert _present(f, lambda r: r.products.get_by_id(lamp.id), mysql, ddb).inventory_quantity == 4
        for read in (lambda r: r.orders.get_by_id(order.id), lambda r: r.orders.list_by_user(buyer.id, 1, 5),
                     lambda r: r.orders.summary_by_user(buyer.id)):
            _same(f, read(routed), read, mysql, ddb)

        routed.carts.add_item(buyer.id, spare.id, 1)
        assert routed.carts.clear(buyer.id) == 1
        assert mysql.carts.list_items(buyer.id) == [] and ddb.carts.list_items(buyer.id) == []
        assert routed.products.delete(spare.id) is True
        assert mysql.products.get_by_id(spare.id) is None and ddb.products.get_by_id(spare.id) is None


def test_dynamodb_only_ids_never_collide_with_mysql(stores, db, dynamo):
    routed, mysql, ddb = stores
    ids = IdAllocator(dynamo)
    with db.cursor() as cur:
        cur.execute("SELECT COALESCE(MAX(id), 0) AS m FROM users")
        mysql_max = cur.fetchone()["m"]
    ids.seed("user", mysql_max + 1000)
    with use_flags(PRESETS[4].flags):
        u = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    assert u.id > mysql_max + 1000 and mysql.users.get_by_id(u.id) is None
    with use_flags(PRESETS[1].flags):
        v = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    assert v.id <= mysql_max + 1 and ddb.users.get_by_id(v.id).username == v.username  # MySQL's id, kept


@pytest.fixture
def dual(stores):
    routed, mysql, ddb = stores
    with use_flags(PRESETS[2].flags):
        seller = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        cat = routed.categories.create(unique("C "), None)
        p = routed.products.create(seller.id, NewProduct(category_id=cat.id, name="Lamp", description="Warm",
                                                         price=Decimal("19.90"), inventory_quantity=5))
        yield routed, seller, p


def _tamper(dynamo, product_id, expression, values=None, names=None):
    kwargs = dict(TableName=dynamo.table("catalog"), Key=encode(keys.product(product_id)),
                  UpdateExpression=expression)
    if values:
        kwargs["ExpressionAttributeValues"] = encode(values)
    if names:
        kwargs["ExpressionAttributeNames"] = names
    dynamo.client.update_item(**kwargs)


@pytest.mark.parametrize("expression,values,attribute,kind", [
    ("SET price = :v", {":v": Decimal("19.95")}, "price", "changed"),
    ("REMOVE description", None, "description", "missing"),
    ("SET image_url = :v", {":v": "/x.png"}, "image_url", "extra"),
    ("SET #n = :v", {":v": 7}, "name", "type"),
])
def test_dual_read_names_each_divergence(dual, dynamo, expression, values, attribute, kind):
    routed, _, p = dual
    with use_flags(PRESETS[2].flags):
        assert routed.products.get_by_id(p.id) is not None  # equal data passes
        _tamper(dynamo, p.id, expression, values, {"#n": "name"} if "#n" in expression else None)
        with pytest.raises(DualReadMismatch) as err:
            routed.products.get_by_id(p.id)
    assert [(d.path, d.kind) for d in err.value.differences] == [(attribute, kind)]
    assert err.value.operation == "ProductRepository.get_by_id" and err.value.key == {"product_id": p.id}


def test_dual_read_missing_item_and_extra_element(dual, dynamo, stores):
    routed, seller, p = dual
    ddb = stores[2]
    with use_flags(PRESETS[2].flags):
        routed.carts.add_item(seller.id, p.id, 1)
        order = routed.orders.checkout(seller.id)
        extra = {"id": 10**9, "product_id": p.id, "quantity": 1, "price_at_time": Decimal("19.90")}
        dynamo.client.update_item(TableName=dynamo.table("orders"), Key=encode(keys.order(order.id)),
                                  UpdateExpression="SET #i = list_append(#i, :x)", ExpressionAttributeNames={"#i": "items"},
                                  ExpressionAttributeValues=encode({":x": [extra]}))  # an item only DynamoDB has
        with pytest.raises(DualReadMismatch) as err:
            routed.orders.get_by_id(order.id)
        assert [(d.path, d.kind) for d in err.value.differences] == [(f"items[id={10**9}]", "extra_item")]
        assert err.value.attributes == ["items[]"]
        ddb.carts.add_item(seller.id, p.id, 1)  # a whole cart only DynamoDB has
        with pytest.raises(DualReadMismatch) as err:
            routed.carts.list_items(seller.id)
        assert [d.kind for d in err.value.differences] == ["extra_item"]
        dynamo.client.delete_item(TableName=dynamo.table("catalog"), Key=encode(keys.product(p.id)))
        with pytest.raises(DualReadMismatch) as err:
            routed.products.get_by_id(p.id)
        assert [d.kind for d in err.value.differences] == ["missing_item"]


def test_report_mode_logs_instead_of_raising(settings, dual, dynamo, caplog):
    routed, _, p = dual
    reporting = create_app(replace(settings, dual_read_mode="report"))
    repo = reporting.extensions["shop"].repos.products
    _tamper(dynamo, p.id, "SET price = :v", {":v": Decimal("1.00")})
    with use_flags(PRESETS[2].flags), caplog.at_level(logging.INFO, "shop.aspects"):
        assert repo.get_by_id(p.id).price == Decimal("19.90")  # MySQL's answer
    record = [r for r in caplog.records if getattr(r, "event", None) == "compare"][-1]
    assert record.outcome == "mismatch" and record.attributes == ["price"]
    health = reporting.extensions["shop"].runtime.stats.snapshot()
    assert health["comparisons"]["mismatch"] == 1 and health["last_mismatch"]["attributes"] == ["price"]
    reporting.extensions["shop"].runtime.close()


def test_mismatch_is_a_clear_api_error(client, api, dynamo, settings):
    user, token, cat, prod = None, None, None, None
    app = create_app(replace(settings, shop_flags="READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"))
    c = app.test_client()
    from .conftest import Api
    a = Api(c)
    user, token = a.register(seller=True)
    cat = a.category(token)
    prod = a.product(token, cat["id"])
    _tamper(dynamo, prod["id"], "SET inventory_quantity = :v", {":v": 999})
    r = c.get(f"/api/products/{prod['id']}")
    body = r.get_json()
    assert r.status_code == 500 and body["error"]["type"] == "DualReadMismatch"
    assert "inventory_quantity: changed" in body["error"]["message"], body
    assert "999" not in r.get_data(as_text=True)  # where they differ, not the records' values
    assert "Traceback" not in r.get_data(as_text=True)
    html = c.get(f"/products/{prod['id']}")
    assert html.status_code == 500 and b"MySQL and DynamoDB disagree" in html.data
    app.extensions["shop"].runtime.close()


def test_custom_mix_reads_authority_and_writes_per_flags(stores, db, dynamo):
    routed, mysql, ddb = stores
    seed_counters_from_mysql(db, dynamo)  # DynamoDB allocates this user's id
    with use_flags(Flags.parse("READ_MYSQL,READ_DDB,WRITE_DDB")):  # custom: MySQL read but not written
        u = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        assert mysql.users.get_by_id(u.id) is None or mysql.users.get_by_id(u.id).username != u.username
        assert ddb.users.get_by_username(u.username).id == u.id


def test_a_method_calling_another_is_routed_once(stores, memory_spans=None):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import observability
    routed, mysql, ddb = stores
    exporter = InMemorySpanExporter()
    observability.add_span_processor(SimpleSpanProcessor(exporter))
    with use_flags(PRESETS[1].flags):
        seller = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
        cat = routed.categories.create(unique("C "), None)
        p = routed.products.create(seller.id, NewProduct(category_id=cat.id, name="n", price=Decimal(1),
                                                         inventory_quantity=1))
        exporter.clear()
        routed.products.set_inventory(p.id, 9)  # MySQL's set_inventory calls self.update
    names = [s.name for s in exporter.get_finished_spans() if s.name.startswith(("Product", "mysql P", "dynamodb P"))]
    assert sorted(names) == ["ProductRepository.set_inventory", "dynamodb ProductRepository.set_inventory",
                             "mysql ProductRepository.set_inventory"]
    assert ddb.products.get_by_id(p.id).inventory_quantity == 9


def test_a_difference_that_vanishes_on_recheck_is_transient_not_a_mismatch(settings, dual, dynamo):
    import threading
    routed, _, p = dual
    # DynamoDB on the pool's client (concurrent), which the hook below watches.
    app = create_app(replace(settings, dual_read_recheck_ms=200, dual_read_execution="concurrent"))
    repo = app.extensions["shop"].repos.products
    app.extensions["shop"].runtime.phase.current()  # read the server phase (a first, slower call) before the race
    _tamper(dynamo, p.id, "SET price = :v", {":v": Decimal("1.00")})  # as if a write were in flight
    healed = threading.Event()

    def heal(**_):  # the write in flight lands right after the first look read DynamoDB
        if not healed.is_set():
            healed.set()
            _tamper(dynamo, p.id, "SET price = :v", {":v": Decimal("19.90")})
    app.extensions["shop"].dynamo.client.meta.events.register("after-call.dynamodb", heal)
    with use_flags(PRESETS[2].flags):
        assert repo.get_by_id(p.id).price == Decimal("19.90")  # no error: it was transient
    assert healed.is_set()
    comparisons = app.extensions["shop"].runtime.stats.snapshot()["comparisons"]
    assert comparisons == {"transient": 1}
    app.extensions["shop"].runtime.close()
