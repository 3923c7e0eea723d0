"""Sync at scale: backfill, verify and the reverse copy over 100k+ entities, against the raw
write limit of this DynamoDB Local (a plain boto3 BatchWriteItem loop of the same items).

MySQL is loaded directly (multi-row INSERTs): users, categories, `--products` products and
`--orders` orders of one line each. Then, in this order, side by side in one process:

  raw       BatchWriteItem, 25 items a request, one thread: the product and order items the
            backfill writes, into tables made like the shop's, measured again right before
            each backfill (the machine drifts): the limit a copy can approach
  backfill  `jobs.backfill` into empty tables, 1 segment, then again into empty tables with
            4 segments (threads of this process)
  verify    `jobs.verify`, 1 and 4 segments, everything equal (reads both stores, writes nothing)
  reverse   `jobs.reverse_copy`, 4 segments, after the newest 10,000 products were deleted from
            MySQL: a rollback's case, entities only DynamoDB holds copied back one at a time
  old       the one-entity-at-a-time copy of the previous release (Sync.copy per entity) on the
            first 2,000 products, for the per-row comparison

Rows/s count entities (a product row is 1 row; its item plus its listing marker are 2 items).

    .venv/bin/python bench/sync_scale.py [--products 100000] [--orders 20000] [--busy]
"""
from __future__ import annotations

import argparse
import multiprocessing
import time
from datetime import datetime, timedelta
from decimal import Decimal

from common import make_app

USERS, CATEGORIES = 1000, 20
RAW_ITEMS = 30_000  # the raw loop writes a sample of the items: a rate needs no more


def seller_of(p: int) -> int:
    """Sellers list products in runs (an import, a season's range): 100 consecutive ids each."""
    return 1 + (p // 100) % 50


def category_of(p: int) -> int:
    return 1 + (p // 20) % CATEGORIES


def load_mysql(app, products: int, orders: int) -> dict:
    state = app.extensions["shop"]
    base = datetime(2026, 1, 1)
    with state.db.cursor(write=True) as cur:
        cur.executemany("INSERT INTO users (id, username, email, password_hash, first_name, last_name, is_seller,"
                        " created_at, updated_at) VALUES (%s, %s, %s, 'h', 'F', NULL, %s, %s, %s)",
                        [(u, f"user{u}", f"user{u}@example.com", u <= 50, base, base) for u in range(1, USERS + 1)])
        cur.executemany("INSERT INTO categories (id, name, parent_id, created_at) VALUES (%s, %s, NULL, %s)",
                        [(c, f"Category {c}", base) for c in range(1, CATEGORIES + 1)])
        for start in range(0, products, 5000):
            cur.executemany(
                "INSERT INTO products (id, seller_id, category_id, name, description, price, inventory_quantity,"
                " image_url, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, %s, %s)",
                [(p, seller_of(p), category_of(p), f"Product {p}", "A product of the sync benchmark",
                  Decimal("9.90"), 100, base + timedelta(seconds=p), base + timedelta(seconds=p))
                 for p in range(start + 1, min(start + 5000, products) + 1)])
        for start in range(0, orders, 5000):
            ids = range(start + 1, min(start + 5000, orders) + 1)
            cur.executemany("INSERT INTO orders (id, user_id, total_amount, status, created_at, updated_at)"
                            " VALUES (%s, %s, 9.90, 'pending', %s, %s)",
                            [(o, 51 + o % (USERS - 50), base, base) for o in ids])
            cur.executemany("INSERT INTO order_items (id, order_id, product_id, quantity, price_at_time)"
                            " VALUES (%s, %s, %s, 1, 9.90)", [(o, o, 1 + o % products) for o in ids])
    return {"user": USERS, "category": CATEGORIES, "product": products, "order": orders}


def raw_limit(app, items: list[tuple[str, dict]]) -> float:
    """Items/s of a plain BatchWriteItem loop (25 a request, one thread, retrying unprocessed)
    into tables made like the shop's (same keys and indexes: each index entry is a write too)."""
    from dataclasses import replace

    from shop.repositories.dynamodb import Dynamo
    from shop.repositories.dynamodb.client import encode
    from shop.repositories.dynamodb.tables import create_tables, delete_tables
    state = app.extensions["shop"]
    scratch = Dynamo(replace(state.settings, dynamodb_table_prefix=state.settings.dynamodb_table_prefix + "raw"))
    create_tables(scratch)
    client = scratch.client
    encoded = [(scratch.table(t), encode(i)) for t, i in items]
    start = time.perf_counter()
    for i in range(0, len(encoded), 25):
        request: dict = {}
        for table, item in encoded[i:i + 25]:
            request.setdefault(table, []).append({"PutRequest": {"Item": item}})
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    elapsed = time.perf_counter() - start
    delete_tables(scratch)
    return len(items) / elapsed


def items_of(app, products: int, orders: int) -> list[dict]:
    """(table, item): the user, product and order items the backfill writes, built by the
    repositories' item code (categories, 20 of them, left out)."""
    from shop.domain import NewProduct
    from shop.repositories.dynamodb import keys
    from shop.repositories.dynamodb.copies import line_items
    from shop.repositories.dynamodb.orders import order_item
    from shop.repositories.mysql.orders import OrderRepository
    from shop.repositories.dynamodb.products import product_item
    from shop.repositories.dynamodb.users import user_items
    from shop.domain import NewUser
    base = datetime(2026, 1, 1)
    out = [("users", i) for u in range(1, USERS + 1) for i in user_items(
        u, NewUser(username=f"user{u}", email=f"user{u}@example.com", password_hash="h", first_name="F",
                   last_name=None), u <= 50, base, base)]
    for p in range(1, products + 1):
        new = NewProduct(category_id=category_of(p), name=f"Product {p}", price=Decimal("9.90"),
                         inventory_quantity=100, description="A product of the sync benchmark")
        item = product_item(p, seller_of(p), new, base + timedelta(seconds=p), base + timedelta(seconds=p),
                            {"category_name": f"Category {category_of(p)}", "seller_username": f"user{seller_of(p)}",
                             "seller_email": f"user{seller_of(p)}@example.com"})
        item["times_ordered"] = 0
        out.append(("catalog", item))
        out.append(("catalog", {**keys.product_counted(p), "entity": "PRODUCT_COUNTED",
                                "category_id": category_of(p), "seller_id": seller_of(p)}))
    state = app.extensions["shop"]
    with state.db.cursor() as cur:
        cur.execute("SELECT * FROM orders ORDER BY id")
        rows = cur.fetchall()
        from shop.repositories.mysql import _rows
        for start in range(0, len(rows), 1000):
            chunk = rows[start:start + 1000]
            items = OrderRepository._items(cur, [r["id"] for r in chunk])
            for r in chunk:
                order = _rows.order(r, items.get(r["id"], []))
                out += [("orders", order_item(order))] + [("orders", line) for line in line_items(order)]
    assert len(out) == 3 * USERS + 2 * products + 2 * orders  # one-line orders: the order and its ORDER_LINE
    return out


def fresh_tables(app) -> None:
    from shop.repositories.dynamodb.tables import create_tables, delete_tables
    state = app.extensions["shop"]
    delete_tables(state.dynamo)
    create_tables(state.dynamo)


def timed(label, fn, rows, limit):
    start = time.perf_counter()
    report = fn()
    elapsed = time.perf_counter() - start
    bad = report.total("failed") + report.total("divergent")
    print(f"{label:44} {rows:9,} {elapsed:8.1f} {rows / elapsed:9,.0f} {rows / elapsed / limit:7.2f}"
          f"   {dict(report.done) or dict(report.compared)}{'  PROBLEMS: ' + str(bad) if bad else ''}")
    return report


def busy_loop(stop):
    while not stop.is_set():
        sum(i * i for i in range(10000))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--busy", action="store_true", help="a second process keeps the other core busy")
    args = parser.parse_args()
    from shop.migration import jobs
    app = make_app()
    state = app.extensions["shop"]
    counts = load_mysql(app, args.products, args.orders)
    entities = sum(counts.values())
    stop = multiprocessing.Event()
    busy = multiprocessing.Process(target=busy_loop, args=(stop,), daemon=True) if args.busy else None
    if busy:
        busy.start()
    print(f"# sync at scale: {entities:,} entities ({counts}); {'busy' if busy else 'quiet'} machine")
    items = items_of(app, args.products, args.orders)
    rows = USERS + args.products + args.orders

    sample = items[::max(1, len(items) // RAW_ITEMS)]  # every kind of item, in proportion

    def raw_rows() -> float:
        """The raw loop again, right before the run it is compared with (the machine drifts)."""
        raw = raw_limit(app, sample)
        print(f"{'  raw BatchWriteItem loop':44} {len(sample) * rows // len(items):9,} {len(sample) / raw:8.1f}"
              f" {raw * rows / len(items):9,.0f} {1:7.2f}   {raw:,.0f} items/s ({len(sample):,} items)")
        return raw * rows / len(items)
    raw_limit(app, sample[:5000])  # warm-up: DynamoDB Local's first writes after a start are slower
    print(f"\n{'run':44} {'rows':>9} {'s':>8} {'rows/s':>9} {'x raw':>7}   outcome")
    for segments in (1, 4):
        limit = raw_rows()
        fresh_tables(app)
        timed(f"backfill, {segments} segment(s), empty DynamoDB", lambda: jobs.backfill(
            state, segments=segments, chunk=100), entities, limit)
    limit = raw_rows()
    for segments in (1, 4):
        timed(f"verify, {segments} segment(s), all equal", lambda: jobs.verify(state, segments=segments, chunk=100),
              entities, limit)
    timed("backfill again, 4 segments, nothing differs", lambda: jobs.backfill(state, segments=4), entities, limit)
    # A rollback's case: products only DynamoDB holds (the newest, never ordered), copied back.
    gone = min(10_000, max(0, args.products - args.orders - 1))  # orders reference products 1..orders+1
    with state.db.cursor(write=True) as cur:
        cur.execute("DELETE FROM products WHERE id > %s", (args.products - gone,))
    timed(f"reverse copy, 4 segments: {gone:,} DynamoDB-only", lambda: jobs.reverse_copy(state, segments=4),
          gone, limit)
    # The previous release's way: one entity at a time, a read on each side and a transaction each.
    fresh_tables(app)
    sync = jobs.copier_for(state)
    sample = min(2000, args.products)
    start = time.perf_counter()
    for p in range(1, sample + 1):
        sync.copy("to_dynamodb", "product", p)
    elapsed = time.perf_counter() - start
    print(f"{'one at a time (previous release), products':44} {sample:9,} {elapsed:8.1f} {sample / elapsed:9,.0f}"
          f" {sample / elapsed / limit:7.2f}")
    if busy:
        stop.set()
        busy.join()


if __name__ == "__main__":
    main()
