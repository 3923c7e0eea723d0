"""What a product listing page costs as the catalog grows: 1k, 10k and 100k products.

Products are loaded fast and directly: BatchWriteItem into this run's own DynamoDB tables
(items built by the repository's own item code, listing counters written alongside) and
multi-row INSERTs into the benchmark MySQL database. Five categories and five sellers share
them evenly. For each size, page 1 and page 10 (20 per page) of the unfiltered, by-category
and by-seller listings, plus a search matching 1% of the catalog, are read from both stores:
median latency over interleaved rounds, and the DynamoDB items each page reads (ScannedCount
of its Queries plus the items its BatchGetItems return, counted by botocore event hooks).
The implementation before this change ("before", loaded from git) is measured too, up to 10k
(it reads every match, so 100k takes seconds per page).

    .venv/bin/python bench/catalog_scale.py [--sizes 1000,10000,100000] [--rounds 9]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from common import make_app

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "edc04e9"  # the last commit before listing totals were kept with the writes
CATEGORIES = SELLERS = 5


def before_module():
    """The DynamoDB ProductRepository as it was at BEFORE, imported beside the current one."""
    source = subprocess.run(["git", "show", f"{BEFORE}:shop/repositories/dynamodb/products.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    name = "shop.repositories.dynamodb._products_before"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "shop.repositories.dynamodb"
    exec(compile(source, "products_before.py", "exec"), module.__dict__)
    sys.modules[name] = module
    return module


class ItemsRead:
    """DynamoDB items read by the requests of one call."""

    def __init__(self, client):
        self.n = 0
        client.meta.events.register("after-call.dynamodb.Query", self._query)
        client.meta.events.register("after-call.dynamodb.BatchGetItem", self._batch)

    def _query(self, parsed, **kwargs):
        self.n += parsed.get("ScannedCount", 0)

    def _batch(self, parsed, **kwargs):
        self.n += sum(len(items) for items in parsed.get("Responses", {}).values())


def load(app, start: int, stop: int, sellers, cats, base: datetime) -> None:
    """Products start..stop-1 into both stores (ids and timestamps shared)."""
    from shop.repositories.dynamodb import keys
    from shop.repositories.dynamodb.client import iso
    from shop.repositories.dynamodb.products import _index_keys
    state = app.extensions["shop"]
    rows, items = [], []
    for i in range(start, stop):
        pid, created = i + 1, base + timedelta(seconds=i)
        cat, seller = cats[i % CATEGORIES], sellers[(i // CATEGORIES) % SELLERS]
        name = f"Item {i}" + (" needle" if i % 100 == 0 else "")
        rows.append((pid, seller.id, cat.id, name, "A product of the scale benchmark", Decimal("9.90"), 5, created, created))
        item = {**keys.product(pid), "entity": "PRODUCT", "id": pid, "seller_id": seller.id, "category_id": cat.id,
                "name": name, "description": rows[-1][4], "price": Decimal("9.90"), "inventory_quantity": 5,
                "created_at": iso(created), "updated_at": iso(created), "category_name": cat.name,
                "seller_username": seller.username, "seller_email": seller.email}
        item.update(_index_keys(item))
        items.append(item)
    with state.db.cursor(write=True) as cur:
        for at in range(0, len(rows), 2000):
            cur.executemany("INSERT INTO products (id, seller_id, category_id, name, description, price,"
                            " inventory_quantity, created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                            rows[at:at + 2000])
    dynamo, table = state.dynamo, state.dynamo.table("catalog")
    chunks = [items[at:at + 500] for at in range(0, len(items), 500)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda chunk: dynamo.batch_put(table, chunk), chunks))
    total = stop
    counts = {"PRODUCTS": total}
    for k, c in enumerate(cats):
        counts[f"CATEGORY#{c.id}"] = len(range(k, total, CATEGORIES))
    for k, s in enumerate(sellers):
        counts[f"SELLER#{s.id}"] = sum(1 for i in range(total) if (i // CATEGORIES) % SELLERS == k)
    dynamo.batch_put(table, [{**keys.listing_count(scope), "entity": "COUNT", "n": n} for scope, n in counts.items()])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--before-up-to", type=int, default=10000)
    args = parser.parse_args()

    from shop import Repositories
    from shop.domain import NewUser, ProductFilters
    app = make_app()
    state = app.extensions["shop"]
    mysql, ddb = Repositories.mysql(state.db), Repositories.dynamodb(state.dynamo)
    old = before_module().ProductRepository(state.dynamo, ddb.products.ids)
    tag = str(time.time_ns())[-8:]
    sellers, cats = [], []
    for k in range(SELLERS):  # both stores, same ids (DynamoDB mirrors MySQL's result)
        s = mysql.users.create(NewUser(username=f"scale{k}{tag}", email=f"scale{k}{tag}@x.com", password_hash="h"))
        sellers.append(ddb.users.create(NewUser(s.username, s.email, "h"), mirror_of=s))
        c = mysql.categories.create(f"Scale {k} {tag}", None)
        cats.append(ddb.categories.create(c.name, None, mirror_of=c))
    items_read = ItemsRead(state.dynamo.client)
    base = datetime(2026, 1, 1)
    loaded = 0
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        began = time.perf_counter()
        load(app, loaded, size, sellers, cats, base)
        loaded = size
        print(f"loaded {size} products in {time.perf_counter() - began:.1f} s", flush=True)
        listings = {"all": ProductFilters(), "by category": ProductFilters(category_id=cats[0].id),
                    "by seller": ProductFilters(seller_id=sellers[0].id), "search (1%)": ProductFilters(search="needle")}
        for listing, filters in listings.items():
            for page in (1, 10):
                stores = {"MySQL": mysql.products, "DynamoDB": ddb.products}
                if size <= args.before_up_to:
                    stores["DynamoDB before"] = old
                answers = {name: repo.list_products(filters, page, 20) for name, repo in stores.items()}
                if answers["MySQL"].total != answers["DynamoDB"].total and listing != "search (1%)":
                    raise SystemExit(f"totals differ: {listing} {answers['MySQL'].total} {answers['DynamoDB'].total}")
                times = {name: [] for name in stores}
                reads = {}
                for _ in range(args.rounds):
                    for name, repo in stores.items():
                        items_read.n = 0
                        start = time.perf_counter()
                        repo.list_products(filters, page, 20)
                        times[name].append((time.perf_counter() - start) * 1000)
                        reads[name] = items_read.n
                results.append((size, listing, page, answers["MySQL"].total, answers["DynamoDB"].total,
                                {n: statistics.median(t) for n, t in times.items()}, reads))
                print(results[-1], flush=True)
    print("\n| products | listing | page | total (MySQL / DynamoDB) | MySQL ms | DynamoDB ms | DynamoDB items read |"
          " before: ms | before: items read |\n|---|---|---|---|---|---|---|---|---|")
    for size, listing, page, m_total, d_total, ms, reads in results:
        before = (f"{ms['DynamoDB before']:.1f} | {reads['DynamoDB before']:,}" if "DynamoDB before" in ms
                  else "not run | (every match)")
        print(f"| {size:,} | {listing} | {page} | {m_total:,} / {d_total:,} | {ms['MySQL']:.1f} | "
              f"{ms['DynamoDB']:.1f} | {reads['DynamoDB']:,} | {before} |")
    state.runtime.close()


if __name__ == "__main__":
    main()
