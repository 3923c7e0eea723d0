"""Shared set-up for the benchmarks: an app over the test databases, some data, timing helpers."""
from __future__ import annotations

import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
os.environ.setdefault("SHOP_CALL_LOG_LEVEL", "DEBUG")  # benchmarks measure routing, not log volume
os.environ.setdefault("LOG_LEVEL", "WARNING")


BENCH_DB = os.environ.get("MYSQL_DATABASE", "online_shopping_store") + "_bench"
PREFIX = f"bench{os.getpid()}"


def make_app(**overrides):
    """An app over the benchmark database (emptied) and DynamoDB tables of this run only."""
    import atexit

    from shop import create_app
    from shop.config import Settings
    from shop.repositories.dynamodb.tables import delete_tables
    from shop.prepare import prepare

    settings = Settings.from_env(mysql_database=BENCH_DB, rate_limit_enabled=False, bcrypt_rounds=4,
                                 dynamodb_table_prefix=PREFIX,
                                 secret_key="bench-secret-key-long-enough-0123456789", **overrides)
    app = create_app(settings)
    state = app.extensions["shop"]
    prepare(app, empty=True)
    atexit.register(delete_tables, state.dynamo)
    return app


def seed_products(app, count: int = 1, flags=None):
    """A seller, a category and `count` products, written to both stores."""
    from shop.aspects import PRESETS, use_flags
    from shop.domain import NewProduct, NewUser

    repos = app.extensions["shop"].repos
    tag = str(time.time_ns())[-10:]
    with use_flags(flags or PRESETS[1].flags):
        seller = repos.users.create(NewUser(username=f"b{tag}", email=f"b{tag}@x.com", password_hash="h"))
        cat = repos.categories.create(f"Bench {tag}", None)
        products = [repos.products.create(seller.id, NewProduct(category_id=cat.id, name=f"Item {i} {tag}",
                                                                price=Decimal("19.90"), inventory_quantity=1000,
                                                                description="A product used by the benchmarks"))
                    for i in range(count)]
    return seller, cat, products


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def interleaved(cases: dict, iterations: int, warmup: int = 20, shuffle: bool = False) -> dict:
    """Run every case once per round, round after round, so noise hits all alike (µs).
    With `shuffle`, each round runs the cases in a new order (seeded), so no case always
    follows the same neighbour."""
    import random
    order, rng = list(cases.items()), random.Random(12)
    samples = {name: [] for name in cases}
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    for _ in range(iterations):
        if shuffle:
            rng.shuffle(order)
        for name, fn in order:
            start = time.perf_counter_ns()
            fn()
            samples[name].append((time.perf_counter_ns() - start) / 1000)
    return samples


def report(title: str, samples: dict, baseline: str | None = None, per_row_baseline=None) -> None:
    print(f"\n## {title}")
    print(f"{'variant':46} {'p50 µs':>10} {'p99 µs':>10} {'ratio':>7}")
    for name, vals in samples.items():
        base = per_row_baseline(name) if per_row_baseline else baseline
        ratio = statistics.median(vals) / base if isinstance(base, float) else (
            statistics.median(vals) / statistics.median(samples[base]) if base else float("nan"))
        print(f"{name:46} {pct(vals, 50):10.1f} {pct(vals, 99):10.1f} {ratio:7.3f}")
