"""Backfill, verify and the reverse copy in chunks, segments and from checkpoints (issue 12,
part 4): what the batched path writes is what the one-at-a-time copy writes, a stopped run
resumes without writing or counting twice, and segments run apart make one run.

The dataset is small (DynamoDB Local is slow); chunks of 2 make it many pages. The figures at
100k rows are bench/sync_scale.py's, not a test's.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

import pytest

from shop import Repositories
from shop.aspects import use_flags
from shop.aspects.compare import attribute_names
from shop.domain import NewProduct, NewUser
from shop.errors import StoreUnavailableError
from shop.migration import jobs, pages
from shop.migration.checkpoint import Checkpoints
from shop.migration.control import PhaseControl
from shop.migration.copies import Copier
from shop.repositories.dynamodb import Dynamo, keys, listing_counts
from shop.repositories.dynamodb.client import encode
from shop.repositories.dynamodb.tables import create_tables, delete_tables

from .conftest import unique
from .test_migration import _app, _close

MYSQL_ONLY = "READ_MYSQL,WRITE_MYSQL"


@pytest.fixture(scope="module")
def world():
    app = _app()
    _dataset(app)
    yield app
    _close(app)


def _dataset(app):
    """Sellers, a category tree, products (some ordered), carts and orders, in MySQL only."""
    routed = app.extensions["shop"].repos
    with use_flags(MYSQL_ONLY):
        sellers = [routed.users.create(NewUser(username=unique("s"), email=unique() + "@x.com", password_hash="h",
                                               first_name="Sel", last_name=None)) for _ in range(3)]
        for s in sellers:
            routed.users.set_seller(s.id, True)
        parent = routed.categories.create(unique("C "), None)
        child = routed.categories.create(unique("C "), parent.id)
        products = [routed.products.create(sellers[i % 3].id, NewProduct(
            category_id=(parent, child)[i % 2].id, name=f"P{i}", price=3 + i, inventory_quantity=50,
            description=None if i % 3 else "d" * i)) for i in range(11)]
        buyers = [routed.users.create(NewUser(username=unique("b"), email=unique() + "@x.com", password_hash="h"))
                  for _ in range(4)]
        for n, buyer in enumerate(buyers):
            for p in products[n:n + 3]:
                routed.carts.add_item(buyer.id, p.id, 1 + n)
            if n % 2 == 0:
                routed.orders.checkout(buyer.id)
                routed.carts.add_item(buyer.id, products[-1].id, 2)


def _items(dynamo, tables=("users", "catalog", "orders")):
    out = {}
    for t in tables:
        for item in dynamo.scan_all(TableName=dynamo.table(t)):
            out[(t, item["PK"], item["SK"])] = item
    return out


def _state(app):
    return app.extensions["shop"]


def _fresh_ddb(app):
    """Empty DynamoDB tables for the world's MySQL data."""
    state = _state(app)
    delete_tables(state.dynamo)
    create_tables(state.dynamo)


def _mysql_counts(app) -> dict[str, int]:
    with _state(app).db.cursor() as cur:
        cur.execute("SELECT category_id, seller_id FROM products")
        rows = cur.fetchall()
    counts = Counter()
    for r in rows:
        counts.update(listing_counts.scopes(r))
    return dict(counts)


def _ddb_counts(app, scopes) -> dict[str, int]:
    return {k: v for k, v in listing_counts.totals(_state(app).dynamo, list(scopes)).items()}


def test_the_batched_backfill_writes_what_the_one_at_a_time_copy_writes(world, settings):
    _fresh_ddb(world)
    report = jobs.backfill(_state(world), segments=3, chunk=2)
    assert report.complete and not report.failed and report.done["copied"] + report.done["unchanged"] == _entities(world), report
    state = _state(world)
    other = Dynamo(replace(state.dynamo.settings, dynamodb_table_prefix=state.dynamo.settings.dynamodb_table_prefix
                           + "o"))
    create_tables(other)
    try:
        sync = Copier(state.db, Repositories.mysql(state.db), Repositories.dynamodb(other), other)
        for entity, entity_id in sync.targets():
            sync.copy("to_dynamodb", entity, entity_id)
        batched, one_by_one = _items(state.dynamo), _items(other)
        assert batched.keys() == one_by_one.keys()
        differing = [k for k in batched if batched[k] != one_by_one[k]]
        assert not differing, [(k, batched[k], one_by_one[k]) for k in differing[:3]]
    finally:
        delete_tables(other)
    expected = _mysql_counts(world)
    assert _ddb_counts(world, expected) == expected
    assert jobs.verify(state, segments=2, chunk=3).ok
    lines = []
    again = jobs.backfill(state, chunk=5, progress=lines.append)  # idempotent: nothing differs, nothing written
    assert again.done["copied"] == 0 and again.done["unchanged"] == _entities(world)
    assert re.fullmatch(r"backfill:auto: done: [\d,]+ MySQL rows and DynamoDB items read in [\d:]+, [\d,]+ a second"
                        r" \(an entity is a row in MySQL and one item or more in DynamoDB: the summary counts entities\)",
                        lines[-1]), lines


class Stop(Exception):
    """The process dies mid-run."""


def test_a_stopped_backfill_resumes_from_its_checkpoint_and_counts_nothing_twice(world, monkeypatch):
    _fresh_ddb(world)
    state = _state(world)
    write, calls, dead = pages.ForwardWriter.write, Counter(), []

    def counting(self, entity, pairs):
        calls[entity] += 1
        if entity == "product" and calls[entity] == 3 and not dead:
            dead.append(True)
            raise Stop()
        return write(self, entity, pairs)
    monkeypatch.setattr(pages.ForwardWriter, "write", counting)
    with pytest.raises(Stop):
        jobs.backfill(state, run="t-resume", chunk=2, resume=True)
    with state.db.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM products")
        products = cur.fetchone()["n"]
    calls.clear()
    resumed = jobs.backfill(state, run="t-resume", chunk=2, resume=True)
    assert resumed.run.resumed and calls["user"] == calls["category"] == 0  # finished steps are not redone
    assert calls["product"] == -(-products // 2) - 2  # the product pages after the two done ones
    # The report is the whole run's: the part done before the stop comes from the checkpoint.
    assert resumed.done["copied"] + resumed.done["unchanged"] == _entities(world) and not resumed.failed
    expected = _mysql_counts(world)
    assert _ddb_counts(world, expected) == expected
    assert jobs.verify(state).ok
    # A finished run is over: the same name starts afresh.
    assert not jobs.backfill(state, run="t-resume", chunk=2, resume=True).run.resumed


def _entities(app) -> int:
    with _state(app).db.cursor() as cur:
        cur.execute("SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM categories)"
                    " + (SELECT COUNT(*) FROM products) + (SELECT COUNT(*) FROM orders)"
                    " + (SELECT COUNT(DISTINCT user_id) FROM shopping_carts) AS n")
        return cur.fetchone()["n"]


def test_segments_run_apart_make_one_run_and_mark_it_once_all_are_done(world):
    _fresh_ddb(world)
    state = _state(world)
    control = PhaseControl(state)
    marks = lambda: control.view.refresh().doc.get("marks", {})  # noqa: E731
    before = marks().get("backfill")
    parts = []
    for i in range(3):  # as three processes would, one after the other
        parts.append(jobs.backfill(state, control=control, run="t-seg", segments=3, segment=i, chunk=2, resume=True))
        if i < 2:
            assert not parts[-1].complete and marks().get("backfill") == before
    whole = parts[-1]
    # Each entity once, by one segment (a cart's products may be copied with it, ahead of their own page).
    assert whole.complete and whole.done["copied"] + whole.done["unchanged"] == _entities(world)
    assert marks()["backfill"]["copied"] + marks()["backfill"]["unchanged"] == _entities(world)
    assert marks()["backfill"]["started_at"] <= marks()["backfill"]["completed_at"]
    assert jobs.verify(state, segments=3, chunk=2).ok
    # A segment count that does not match the run under way is refused, clearly.
    jobs.backfill(state, run="t-mismatch", segments=2, segment=0, chunk=2, resume=True)
    with pytest.raises(ValueError, match="under way with 2 segments"):
        jobs.backfill(state, run="t-mismatch", segments=3, segment=1, chunk=2, resume=True)
    Checkpoints(state.db).restart("t-mismatch")


def _backfilled(app):
    """The world copied into DynamoDB: the state, both stores' repositories and the first product."""
    state = _state(app)
    jobs.backfill(state)
    with state.db.cursor() as cur:
        cur.execute("SELECT id, seller_id FROM products ORDER BY id LIMIT 1")
        first = cur.fetchone()
    return state, Repositories.mysql(state.db), Repositories.dynamodb(state.dynamo), first


def test_verify_finds_each_kind_of_divergence_once_across_segments(world):
    state, mysql, ddb, first = _backfilled(world)
    changed = first["id"]
    with state.db.cursor() as cur:
        cur.execute("SELECT id FROM users ORDER BY id DESC LIMIT 1")
        last_user = cur.fetchone()["id"]
    ddb.products.update(changed, {"name": "renamed in DynamoDB only"})
    ghost = ddb.categories.create(unique("only in DynamoDB "), None)
    with use_flags(MYSQL_ONLY):
        lonely = _state(world).repos.users.create(NewUser(username=unique("m"), email=unique() + "@x.com",
                                                          password_hash="h"))
    assert lonely.id > last_user
    with state.db.cursor() as cur:
        cur.execute("SELECT DISTINCT order_id FROM order_items WHERE product_id = %s", (changed,))
        holding = {("order", r["order_id"]) for r in cur.fetchall()}
    assert holding  # the rename reached the copies in DynamoDB's orders: they differ from MySQL's join too
    report = jobs.verify(state, segments=2, chunk=2)
    found = {(e, int(i)): names for e, i, names, _ in report.divergent}
    assert found.keys() == {("product", changed), ("category", ghost.id), ("user", lonely.id)} | holding, found
    assert "name" in found[("product", changed)]
    assert {tuple(found[o]) for o in holding} == {("items[].product.name",)}
    assert sum(report.compared.values()) == _entities(world) + 1  # and the category only DynamoDB holds
    # The category only DynamoDB holds, found in a batch, differs as the one-entity compare says.
    assert found[("category", ghost.id)] == attribute_names(Copier.of(state.db, state.dynamo).compare("category", ghost.id))
    # The reverse copy brings the DynamoDB-only category to MySQL, with its id.
    copied = jobs.reverse_copy(state, segments=2)
    assert copied.done["copied"] == 1 and mysql.categories.get_by_id(ghost.id).name == ghost.name
    state.dynamo.call("delete_item", TableName=state.dynamo.table("catalog"),
                      Key=encode({"PK": "CATEGORIES", "SK": f"CATEGORY#{ghost.id:010d}"}))


def test_a_product_item_written_without_its_listing_marker_is_counted_by_the_next_backfill(world):
    """A run stopped between a page's item writes and its marker transaction leaves products
    whose items equal MySQL's but which no listing counts: the next backfill counts them."""
    state = _state(world)
    jobs.backfill(state)
    with state.db.cursor() as cur:
        cur.execute("SELECT id, category_id, seller_id FROM products ORDER BY id LIMIT 2")
        rows = cur.fetchall()
    table = state.dynamo.table("catalog")
    for r in rows:  # uncount them: marker deleted and counters moved down, items untouched
        state.dynamo.transact(listing_counts.changes(table, r["id"], listing_counts.membership(r), None))
    expected = _mysql_counts(world)
    assert _ddb_counts(world, expected) != expected
    report = jobs.backfill(state, chunk=3)
    assert report.done["copied"] == 2 and _ddb_counts(world, expected) == expected
    assert jobs.backfill(state).done["copied"] == 0


def test_a_batched_backfill_of_a_changed_email_rewrites_the_sellers_products(world):
    state, mysql, ddb, row = _backfilled(world)
    seller = mysql.users.get_by_id(row["seller_id"])
    mysql.users.update_profile(seller.id, {"email": "new-" + seller.email})  # the mirror was lost
    assert jobs.backfill(state, chunk=4).done["copied"] == 1
    assert ddb.products.get_by_id(row["id"]).seller_email == "new-" + seller.email
    assert ddb.users.get_by_email("new-" + seller.email).id == seller.id and ddb.users.get_by_email(seller.email) is None
    assert jobs.verify(state).ok


def test_the_batched_reverse_copy_brings_back_what_only_dynamodb_holds_and_refuses_collisions(world):
    """A rollback's case: users, products and orders DynamoDB alone holds go back to MySQL in
    pages, ids kept; one whose id MySQL gives to someone else is reported, nothing overwritten."""
    state = _state(world)
    jobs.backfill(state)
    mysql = Repositories.mysql(state.db)
    with state.db.cursor() as cur:
        cur.execute("SELECT id FROM orders ORDER BY id DESC LIMIT 1")
        order_id = cur.fetchone()["id"]
    order = mysql.orders.get_by_id(order_id)
    buyer = mysql.users.get_by_id(order.user_id)
    with state.db.cursor(write=True) as cur:  # gone from MySQL, as if written in phase 5 only
        cur.execute("DELETE FROM orders WHERE id = %s", (order_id,))
        cur.execute("SELECT id FROM products ORDER BY id DESC LIMIT 1")
        product_id = cur.fetchone()["id"]
    product = mysql.products.get_by_id(product_id)
    with state.db.cursor(write=True) as cur:
        cur.execute("DELETE FROM shopping_carts WHERE product_id = %s", (product_id,))
        cur.execute("DELETE FROM order_items WHERE product_id = %s", (product_id,))
        cur.execute("DELETE FROM products WHERE id = %s", (product_id,))
    with use_flags(MYSQL_ONLY):  # MySQL hands a newcomer the id DynamoDB gave someone else
        other = _state(world).repos.users.create(NewUser(username=unique("x"), email=unique() + "@x.com",
                                                         password_hash="h"))
    stranger = replace(other, username=unique("y"), email=unique() + "@x.com")
    state.dynamo.batch_put(state.dynamo.table("users"), [
        {"PK": f"USER#{other.id}", "SK": "#META", "entity": "USER", "id": other.id, "username": stranger.username,
         "email": stranger.email, "password_hash": "h", "is_seller": False,
         "created_at": "2026-01-01T00:00:00.000000", "updated_at": "2026-01-01T00:00:00.000000"}])
    report = jobs.reverse_copy(state, everything=True, segments=2, chunk=3)
    assert [(e, int(i)) for e, i, _ in report.failed] == [("user", other.id)], report.failed
    assert mysql.users.get_by_id(other.id).username == other.username  # nothing overwritten
    assert mysql.orders.get_by_id(order_id) is not None and not jobs.copier_for(state).compare("order", order_id)
    assert mysql.products.get_by_id(product_id).name == product.name
    assert mysql.users.get_by_id(buyer.id).email == buyer.email
    assert report.done["copied"] == _entities(world) - 1
    state.dynamo.call("delete_item", TableName=state.dynamo.table("users"),
                      Key=encode({"PK": f"USER#{other.id}", "SK": "#META"}))


def test_raising_auto_increment_waits_out_a_transaction_holding_the_table(world):
    """ALTER TABLE waits for every open transaction on the table: under traffic it used to wait
    until the connection timed out (30 s) and fail the move out of phase 5 (make journey found
    it). Now it waits a bounded time and tries again."""
    import logging
    import threading

    import pymysql

    from shop.migration.copies import raise_auto_increment

    state = _state(world)
    retried = threading.Event()

    class Retried(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("AUTO_INCREMENT waited"):
                retried.set()
    handler = Retried()
    logging.getLogger("shop.migration").addHandler(handler)
    holder = pymysql.connect(**state.db.connect_kwargs())
    try:
        with holder.cursor() as cur:  # an open transaction that has read products: a metadata lock
            cur.execute("BEGIN")
            cur.execute("SELECT id FROM products LIMIT 1")
        release = threading.Thread(target=lambda: (retried.wait(30), holder.commit()))
        release.start()
        raised = raise_auto_increment(state.db, state.dynamo, gap=5, lock_wait_s=1)
        release.join()
    finally:
        logging.getLogger("shop.migration").removeHandler(handler)
        holder.close()
    assert retried.is_set() and raised["products"] > 1
    with state.db.cursor() as cur:
        cur.execute("SELECT AUTO_INCREMENT AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
                    " AND TABLE_NAME = 'products'")
        assert cur.fetchone()["n"] >= raised["products"]


def test_a_first_copy_skips_the_scan_of_tables_that_were_empty_and_only_of_those(world):
    """Scanning for what only DynamoDB holds re-reads everything a first copy wrote; a table
    empty when the run began holds nothing of the kind while MySQL is written first. A table
    that held something is scanned, and what only DynamoDB holds there is reported."""
    state = _state(world)
    _fresh_ddb(world)
    ddb_only = {**keys.user(990_001), "entity": "USER", "id": 990_001, "username": unique("ddb"),
                "email": unique() + "@x.com", "password_hash": "h", "is_seller": False,
                "created_at": "2026-01-01T00:00:00.000000", "updated_at": "2026-01-01T00:00:00.000000"}
    state.dynamo.call("put_item", TableName=state.dynamo.table("users"), Item=encode(ddb_only))
    with use_flags(MYSQL_ONLY):
        report = jobs.backfill(state, run="skip-scans", chunk=4)
    assert sorted(report.run.plan["skip_scans"]) == ["catalog", "orders"]
    done = set(Checkpoints(state.db).steps(report.run, 0))
    assert "ddb:users" in done and not {"ddb:catalog", "ddb:orders"} & done
    assert ("user", 990_001) in {(e, int(i)) for e, i, _ in report.left}
    assert {(e, int(i)) for e, i, *_ in jobs.verify(state, chunk=4).divergent} == {("user", 990_001)}


def _product_row(state, offset):
    with state.db.cursor() as cur:
        cur.execute("SELECT id, inventory_quantity FROM products ORDER BY id LIMIT 1 OFFSET %s", (offset,))
        return cur.fetchone()


def _after_page_read(monkeypatch, target, action) -> list:
    """`action` runs once, right after the backfill read the product page holding `target`
    (before that page is written); the returned list says whether it ran."""
    load, ran = jobs.Backfill.load_page, []

    def reading(self, entity, ids):
        loaded = load(self, entity, ids)
        if entity == "product" and target in ids and not ran:
            ran.append(True)
            action()
        return loaded
    monkeypatch.setattr(jobs.Backfill, "load_page", reading)
    return ran


def test_a_dual_write_landing_between_a_page_read_and_its_write_is_not_overwritten(world, monkeypatch):
    """A first copy writes a page without reading DynamoDB; a dual write can land in between and
    be overwritten by the page's older copy. The backfill reads MySQL again after each page
    and copies what changed once more: DynamoDB ends with the dual write, counters counted once."""
    state = _state(world)
    _fresh_ddb(world)
    row = _product_row(state, 3)
    target, fresh = row["id"], row["inventory_quantity"] + 17

    def dual_write():
        # MySQL takes it; DynamoDB has no item yet (recorded for repair) or, had a repair copied
        # it meanwhile, takes it too. Either way the page's copy is older.
        with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):
            state.repos.products.set_inventory(target, fresh)
    hit = _after_page_read(monkeypatch, target, dual_write)
    report = jobs.backfill(state, run="race", chunk=2)
    assert hit and "catalog" in report.run.plan["skip_scans"] and not report.failed
    assert Repositories.dynamodb(state.dynamo).products.get_by_id(target).inventory_quantity == fresh
    assert report.done["copied again"] == 1
    expected = _mysql_counts(world)
    assert _ddb_counts(world, expected) == expected
    assert jobs.verify(state, chunk=4).ok


def test_a_failed_re_copy_is_reported_and_keeps_its_journal_entry(world, monkeypatch):
    state = _state(world)
    _fresh_ddb(world)
    journal = state.runtime.journal
    row = _product_row(state, 2)
    target = row["id"]
    journal.record("to_dynamodb", [("product", target)], "ProductRepository.set_inventory", "DynamoDB was down")
    _after_page_read(monkeypatch, target,
                     lambda: Repositories.mysql(state.db).products.set_inventory(target, row["inventory_quantity"] + 3))

    def failing(self, entity, entity_id, deleted):
        raise RuntimeError("DynamoDB refused the copy")
    monkeypatch.setattr(jobs.Recheck, "copy_if_different", failing)
    report = jobs.backfill(state, run="re-copy-fails", chunk=2)
    assert [(e, int(i)) for e, i, _ in report.failed] == [("product", target)]
    assert ("product", str(target)) in {(e.entity, str(e.entity_id)) for e in journal.pending("to_dynamodb")}
    monkeypatch.undo()
    jobs.repair(state)  # the entry still drives the copy
    assert ("product", str(target)) not in {(e.entity, str(e.entity_id)) for e in journal.pending("to_dynamodb")}
    assert jobs.verify(state, chunk=4).ok


def _after_repair_reads(monkeypatch, repository: str, method: str, after_read) -> None:
    """`after_read(entity_id, found)` runs after each read repair's MySQL `repository.method`
    makes (its copies and its re-check's snapshots alike), before the caller goes on."""
    make_sync = jobs.copier_for

    def sync_with_a_race(st):
        sync = make_sync(st)
        read = getattr(getattr(sync.mysql, repository), method)

        def reading(entity_id):
            found = read(entity_id)
            after_read(entity_id, found)
            return found
        setattr(getattr(sync.mysql, repository), method, reading)
        return sync
    monkeypatch.setattr(jobs, "copier_for", sync_with_a_race)


def test_repair_settles_a_dual_write_landing_between_its_read_and_its_write(world, monkeypatch):
    """Repair copies one entity at a time: it reads MySQL, then writes DynamoDB. A dual write
    landing in between reaches both stores before the repair's older copy overwrites it in
    DynamoDB. Repair reads MySQL again after each copy and copies what moved once more."""
    state, mysql, ddb, _ = _backfilled(world)
    journal = state.runtime.journal
    row = _product_row(state, 4)
    target, fresh, ran = row["id"], row["inventory_quantity"] + 11, []
    journal.record("to_dynamodb", [("product", target)], "ProductRepository.update", "DynamoDB was down")

    def after_read(product_id, found):
        if product_id == target and not ran:
            ran.append(True)
            with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):  # lands in both stores
                state.repos.products.set_inventory(target, fresh)
    _after_repair_reads(monkeypatch, "products", "get_by_id", after_read)
    report = jobs.repair(state)
    assert ran and ddb.products.get_by_id(target).inventory_quantity == fresh  # not the repair's older copy
    assert not report.failed and report.done["copied again"] == 1, report
    assert ("product", str(target)) not in {(e.entity, str(e.entity_id)) for e in journal.pending("to_dynamodb")}
    assert jobs.verify(state, chunk=4).ok


def test_repair_settles_a_line_added_to_an_empty_cart_while_it_copies_that_cart(world, monkeypatch):
    """A cart entry is usually repaired once MySQL's cart is empty (after a checkout or a
    clear). A line added between the repair's read of the empty cart and its DynamoDB write was
    cleared by that write: an empty cart is compared like any other."""
    state = _state(world)
    with use_flags(MYSQL_ONLY):
        buyer = state.repos.users.create(NewUser(username=unique("e"), email=unique() + "@x.com", password_hash="h"))
    _, mysql, ddb, first = _backfilled(world)
    journal, reads, ran = state.runtime.journal, [], []
    journal.record("to_dynamodb", [("cart", buyer.id)], "ShoppingCartRepository.clear", "DynamoDB was down")

    def after_read(user_id, found):
        if user_id == buyer.id:
            reads.append(found)
            if len(reads) == 2:  # the copy's read (the first is the re-check's snapshot)
                ran.append(found)
                with use_flags("READ_MYSQL,WRITE_MYSQL,WRITE_DDB"):  # lands in both stores
                    state.repos.carts.add_item(buyer.id, first["id"], 2)
    _after_repair_reads(monkeypatch, "carts", "list_items", after_read)
    report = jobs.repair(state)
    assert ran == [[]]  # the repair read the cart empty
    assert [(ln.product_id, ln.quantity) for ln in ddb.carts.list_items(buyer.id)] == [(first["id"], 2)]
    assert not report.failed and report.done["copied again"] == 1, report
    assert ("cart", str(buyer.id)) not in {(e.entity, str(e.entity_id)) for e in journal.pending("to_dynamodb")}
    assert jobs.verify(state, chunk=4).ok


def test_a_store_failing_during_repair_s_re_check_is_reported_and_the_repair_goes_on(world, monkeypatch):
    state, mysql, ddb, first = _backfilled(world)
    journal = state.runtime.journal
    one, other = _product_row(state, 0)["id"], _product_row(state, 1)["id"]
    journal.record("to_dynamodb", [("product", one), ("product", other)], "ProductRepository.update", "down")
    snapshot = jobs.Recheck.snapshot

    def failing_for_one(self, entity, ids):
        if entity == "product" and one in ids:
            raise StoreUnavailableError("MySQL is unavailable", store="mysql")
        return snapshot(self, entity, ids)
    monkeypatch.setattr(jobs.Recheck, "snapshot", failing_for_one)
    report = jobs.repair(state)
    assert [(e, int(i)) for e, i, _ in report.failed] == [("product", one)]
    pending = {(e.entity, int(e.entity_id)) for e in journal.pending("to_dynamodb")}
    assert ("product", one) in pending and ("product", other) not in pending  # the next entry was replayed
    monkeypatch.undo()
    jobs.repair(state)
    assert ("product", one) not in {(e.entity, int(e.entity_id)) for e in journal.pending("to_dynamodb")}
