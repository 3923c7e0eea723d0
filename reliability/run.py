"""Faults made for real, against MariaDB and private DynamoDB Local processes, with figures.

    make reliability     (or: .venv/bin/python -m reliability.run [--quick])

Each scenario gets a clean MySQL database (<test db>_faults) and its own DynamoDB Local.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reliability.proxy import Proxy  # noqa: E402
from tests.ddb_local import DynamoDBLocal  # noqa: E402

TEST_DB = os.environ.get("MYSQL_TEST_DATABASE", os.environ.get("MYSQL_DATABASE", "online_shopping_store") + "_test")
# Its own database when run as `make reliability` (the test session empties the faults one).
RELIABILITY_DB = os.environ.get("SHOP_RELIABILITY_DATABASE", TEST_DB + "_faults")
FIGURES: list[tuple[str, str, str, str]] = []  # scenario, figure, measured, target


def figure(scenario, name, value, target):
    FIGURES.append((scenario, name, str(value), target))
    print(f"  {name}: {value} (target {target})", flush=True)


def settings(**overrides):
    from shop.config import Settings
    base = Settings.from_env(mysql_database=RELIABILITY_DB, rate_limit_enabled=False, bcrypt_rounds=4,
                             secret_key="reliability-secret-key-long-enough-0123", dynamodb_table_prefix="rel",
                             dynamodb_max_attempts=2, dynamodb_connect_timeout=1, dynamodb_read_timeout=2,
                             breaker_threshold=3, breaker_cooldown_s=2)
    return replace(base, **overrides)


def fresh_app(s):
    from shop import create_app
    from shop.prepare import prepare
    app = create_app(s)
    prepare(app, empty=True)
    return app


def cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def divergent(app) -> set:
    from shop import Repositories
    from shop.migration.copies import Copier
    st = app.extensions["shop"]
    sync = Copier(st.db, Repositories.mysql(st.db), Repositories.dynamodb(st.dynamo), st.dynamo)
    return {(e, str(i)) for e, i in sync.targets() if sync.compare(e, i)}


def seller_and_product(api, stock):
    user, token = api.register(seller=True)
    cat = api.category(token)
    return token, api.product(token, cat["id"], inventory_quantity=stock)


def scenario_dynamodb_outage(tmp, seconds):
    print("\n1. DynamoDB down for a window during a dual-write load", flush=True)
    from tests.conftest import Api
    ddb = DynamoDBLocal(Path(tmp) / "s1").start()
    proxy = Proxy(ddb.port)
    app = fresh_app(settings(dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}",
                             shop_flags="READ_MYSQL,WRITE_MYSQL,WRITE_DDB"))
    _, product = seller_and_product(Api(app.test_client()), 10_000)
    statuses, stop = [], threading.Event()

    def shopper():
        api = Api(app.test_client())
        while not stop.is_set():
            try:
                user, token = api.register()
                statuses.append(api.call("POST", "/api/cart/items", token,
                                         {"productId": product["id"], "quantity": 1}).status_code)
                statuses.append(api.call("POST", "/api/orders/checkout", token, {"paymentMethod": "paypal"}).status_code)
                statuses.append(201)
            except AssertionError:
                statuses.append(500)

    threads = [threading.Thread(target=shopper) for _ in range(4)]
    [t.start() for t in threads]
    time.sleep(seconds * 0.25)
    proxy.cut = True
    proxy.drop_all()
    time.sleep(seconds * 0.5)
    proxy.cut = False
    time.sleep(seconds * 0.25)
    stop.set()
    [t.join(60) for t in threads]
    failed = sum(1 for s in statuses if s >= 300)
    diverged = divergent(app)
    recorded = {(e["entity"], e["entity_id"]) for e in app.extensions["shop"].runtime.repair_log.pending()}
    covered = len(diverged & recorded)
    from collections import Counter
    missing = diverged - recorded
    if missing:
        print("  divergent without an entry:", dict(Counter(e for e, _ in missing)), sorted(missing)[:5], flush=True)
    figure("1", "requests made / failed", f"{len(statuses)} / {failed}", "failed 0")
    figure("1", "divergent entities recorded for repair", f"{covered} of {len(diverged)}"
           f" ({100 * covered / max(1, len(diverged)):.0f}%)", "100%")
    cli(app, "repair")
    after = cli(app, "verify")
    figure("1", "divergence after repair + verify", after.output.strip().splitlines()[-1], "divergent: 0")
    app.extensions["shop"].runtime.close()
    proxy.close()
    ddb.stop()


def scenario_mysql_down(tmp, requests):
    print("\n2. MySQL down during dual writes", flush=True)
    from shop import Repositories
    from tests.conftest import Api
    ddb = DynamoDBLocal(Path(tmp) / "s2").start()
    base = settings()
    proxy = Proxy(base.mysql_port, base.mysql_host)
    app = fresh_app(settings(dynamodb_endpoint=ddb.endpoint, mysql_port=proxy.port, mysql_connect_timeout=1,
                             shop_flags="READ_MYSQL,WRITE_MYSQL,WRITE_DDB"))
    api = Api(app.test_client())
    api.register()  # the pool is warm
    proxy.cut = True
    proxy.drop_all()
    codes = []
    for i in range(requests):
        r = api.call("POST", "/api/auth/register", json={"username": f"down{i}", "email": f"down{i}@x.com",
                                                          "password": "Secret123!"})
        codes.append((r.status_code, r.get_json()["error"]["type"] if r.status_code >= 400 else None))
    ddb_users = sum(1 for i in range(requests)
                    if Repositories.dynamodb(app.extensions["shop"].dynamo).users.get_by_username(f"down{i}"))
    figure("2", "DynamoDB writes made while MySQL was down", ddb_users, "0")
    clean = sum(1 for c, t in codes if c == 503 and t == "DatabaseError")
    figure("2", "responses that were clean 503 DatabaseError", f"{clean} of {requests}", "all")
    proxy.cut = False
    app.extensions["shop"].runtime.close()
    proxy.close()
    ddb.stop()


KILLED_WORKER = r'''
import sys, threading
sys.path.insert(0, sys.argv[1])
from shop import create_app
from reliability.run import settings
from shop.domain import NewUser
from shop.aspects import use_flags
app = create_app(settings(dynamodb_endpoint=sys.argv[2], dynamodb_read_timeout=600, dynamodb_max_attempts=1,
                          shop_flags="READ_MYSQL,WRITE_MYSQL,WRITE_DDB"))
repos = app.extensions["shop"].repos
def write(i):
    repos.users.create(NewUser(username=f"killed{i}", email=f"killed{i}@x.com", password_hash="h"))
threads = [threading.Thread(target=write, args=(i,)) for i in range(int(sys.argv[3]))]
[t.start() for t in threads]
[t.join() for t in threads]
'''


def scenario_killed_worker(tmp, count):
    print("\n3. A worker killed between the MySQL commit and the DynamoDB write", flush=True)
    ddb = DynamoDBLocal(Path(tmp) / "s3").start()
    proxy = Proxy(ddb.port)
    app = fresh_app(settings(dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}"))
    proxy.stall = True  # DynamoDB receives the write but never answers
    child = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, str(ROOT), f"http://127.0.0.1:{proxy.port}",
                              str(count)], cwd=ROOT)
    deadline = time.monotonic() + 60
    committed = 0
    while time.monotonic() < deadline and committed < count:
        with app.extensions["shop"].db.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM users WHERE username LIKE 'killed%%'")
            committed = cur.fetchone()["n"]
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    proxy.cut = True  # what the dead worker had in flight never reaches DynamoDB
    proxy.drop_all()
    proxy.stall = False
    proxy.cut = False
    found = cli(app, "verify").output.strip().splitlines()[-1]
    figure("3", "writes committed in MySQL when the worker was killed", committed, str(count))
    figure("3", "verify finds", found, f"divergent: {count}")
    repaired = cli(app, "repair", "--divergent").output.strip().splitlines()[-1]
    figure("3", "repair --divergent", repaired, f"repaired {count} of {count}")
    figure("3", "verify after repair", cli(app, "verify").output.strip().splitlines()[-1], "divergent: 0")
    app.extensions["shop"].runtime.close()
    proxy.close()
    ddb.stop()


def scenario_last_items(tmp, buyers, stock):
    print("\n4. Concurrent checkouts of the last items, dual reads on", flush=True)
    from shop import Repositories
    from tests.conftest import Api
    ddb = DynamoDBLocal(Path(tmp) / "s4").start()
    app = fresh_app(settings(dynamodb_endpoint=ddb.endpoint, shop_flags="READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"))
    api = Api(app.test_client())
    _, product = seller_and_product(api, stock)
    tokens = []
    for _ in range(buyers):
        _, token = api.register()
        api.call("POST", "/api/cart/items", token, {"productId": product["id"], "quantity": 1})
        tokens.append(token)
    barrier, results = threading.Barrier(buyers), []

    def buy(token):
        client = Api(app.test_client())
        barrier.wait()
        r = client.call("POST", "/api/orders/checkout", token, {"paymentMethod": "paypal"})
        results.append((r.status_code, (r.get_json().get("data") or {}).get("order", {}).get("id")))

    threads = [threading.Thread(target=buy, args=(t,)) for t in tokens]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    orders = [oid for code, oid in results if code == 201]
    st = app.extensions["shop"]
    mysql_left = Repositories.mysql(st.db).products.get_by_id(product["id"]).inventory_quantity
    ddb_repos = Repositories.dynamodb(st.dynamo)
    ddb_left = ddb_repos.products.get_by_id(product["id"]).inventory_quantity
    figure("4", "orders placed / stock", f"{len(orders)} / {stock}", f"{stock}")
    figure("4", "oversells (MySQL, DynamoDB)", f"{max(0, -mysql_left)}, {max(0, -ddb_left)}", "0, 0")
    figure("4", "orders present in both stores", f"{sum(1 for o in orders if ddb_repos.orders.get_by_id(o))} of {len(orders)}", "all")
    api.call("GET", f"/api/products/{product['id']}")
    comparisons = st.runtime.stats.snapshot()["comparisons"]
    last = st.runtime.stats.snapshot()["last_mismatch"]
    figure("4", "dual-read mismatches", comparisons.get("mismatch", 0)
           if not last else f"{comparisons['mismatch']} ({last['operation']}: {', '.join(last['attributes'])})", "0")
    figure("4", "transient differences gone on recheck (a write between its two stores)",
           comparisons.get("transient", 0), "counted, not errors")
    st.runtime.close()
    ddb.stop()


def scenario_slow_dynamodb(tmp):
    print("\n5. Slow DynamoDB in dual reads", flush=True)
    from tests.conftest import Api
    ddb = DynamoDBLocal(Path(tmp) / "s5").start()
    proxy = Proxy(ddb.port)
    app = fresh_app(settings(dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}", dual_read_timeout_ms=300,
                             dynamodb_read_timeout=10, shop_flags="READ_MYSQL,READ_DDB,WRITE_MYSQL,WRITE_DDB"))
    api = Api(app.test_client())
    _, product = seller_and_product(api, 5)
    proxy.delay = 2.0
    start = time.perf_counter()
    r = api.call("GET", f"/api/products/{product['id']}")
    elapsed = time.perf_counter() - start
    figure("5", "dual read with DynamoDB 2 s late, timeout 300 ms: status, seconds",
           f"{r.status_code}, {elapsed:.2f} s", "200 within about 0.3 s + MySQL")
    figure("5", "comparison outcome recorded", app.extensions["shop"].runtime.stats.snapshot()["comparisons"],
           "timeout (policy: serve MySQL's answer, count it)")
    proxy.delay = 0
    app.extensions["shop"].runtime.close()
    proxy.close()
    ddb.stop()


def scenario_stalled_dual_writes(tmp, requests):
    print("\n7. A stalled DynamoDB (accepts, never answers) under dual writes", flush=True)
    from tests.conftest import Api
    ddb = DynamoDBLocal(Path(tmp) / "s7").start()
    proxy = Proxy(ddb.port)
    app = fresh_app(settings(dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}", dynamodb_read_timeout=20,
                             dynamodb_max_attempts=4, dual_write_timeout_ms=1000, breaker_threshold=5,
                             breaker_cooldown_s=30, shop_flags="READ_MYSQL,WRITE_MYSQL,WRITE_DDB"))
    proxy.stall = True
    timings, statuses, lock = [], [], threading.Lock()

    def shopper(n):
        api = Api(app.test_client())
        for i in range(n):
            start = time.perf_counter()
            name = f"stall{threading.get_ident() % 10_000}x{i}"
            r = api.call("POST", "/api/auth/register", json={"username": name, "email": f"{name}@example.com",
                                                              "password": "Secret123!"})
            with lock:
                timings.append(time.perf_counter() - start)
                statuses.append(r.status_code)

    threads = [threading.Thread(target=shopper, args=(requests // 4,)) for _ in range(4)]
    [t.start() for t in threads]
    [t.join(300) for t in threads]
    timings.sort()
    figure("7", "requests / failed", f"{len(statuses)} / {sum(1 for c in statuses if c >= 300)}", "failed 0")
    figure("7", "slowest request, median (deadline 1.0 s, botocore would wait 4 x 20 s)",
           f"{timings[-1]:.2f} s, {timings[len(timings) // 2]:.3f} s", "slowest about the deadline")
    figure("7", "requests that waited the deadline before the breaker opened",
           sum(1 for t in timings if t >= 0.9), "the breaker threshold (5), shared by the worker's threads")
    pending = app.extensions["shop"].runtime.repair_log.pending_count()
    figure("7", "writes recorded for repair", f"{pending} of {len(statuses)}", "all")
    proxy.stall = False
    proxy.cut = True
    proxy.drop_all()
    proxy.cut = False
    app.extensions["shop"].runtime.breaker.success()
    cli(app, "repair")
    figure("7", "after repair + verify", cli(app, "verify").output.strip().splitlines()[-1], "divergent: 0")
    app.extensions["shop"].runtime.close()
    proxy.close()
    ddb.stop()


def scenario_stalled_phases(tmp, requests):
    print("\n10. A stalled DynamoDB in phase 1 and in phase 3, end to end: every request a shopper makes", flush=True)
    from shop.aspects import PRESETS
    from tests.conftest import Api
    ddb = DynamoDBLocal(Path(tmp) / "s8").start()
    for phase in (1, 3):
        proxy = Proxy(ddb.port)
        # The documented limits (2 s of waits on DynamoDB reads, 1.5 s on writes, per request),
        # and botocore's default patience, as in production.
        app = fresh_app(settings(dynamodb_endpoint=f"http://127.0.0.1:{proxy.port}", dynamodb_read_timeout=5,
                                 dynamodb_table_prefix=f"rel{phase}",
                                 dynamodb_max_attempts=4, breaker_threshold=5, breaker_cooldown_s=30,
                                 shop_flags=str(PRESETS[phase - 1].flags)))
        api = Api(app.test_client())
        _, product = seller_and_product(api, 100_000)
        shoppers = [api.register() for _ in range(4)]

        def shop(token, timings, statuses, n):
            client = Api(app.test_client())
            for _ in range(n):
                for method, path, body in (("GET", "/api/products?limit=5", None),
                                           ("GET", f"/api/products/{product['id']}", None),
                                           ("POST", "/api/cart/items", {"productId": product["id"], "quantity": 1}),
                                           ("GET", "/api/cart", None)):
                    start = time.perf_counter()
                    status = client.call(method, path, token, body).status_code
                    timings.append(time.perf_counter() - start)
                    statuses.append(status)

        def run(label):
            timings, statuses = [], []
            threads = [threading.Thread(target=shop, args=(t, timings, statuses, requests // 16)) for _, t in shoppers]
            [t.start() for t in threads]
            [t.join(600) for t in threads]
            timings.sort()
            failed = sum(1 for c in statuses if c >= 300)
            return f"{timings[len(timings) // 2] * 1000:.0f} ms, {timings[-1] * 1000:.0f} ms ({len(statuses)} requests," \
                   f" {failed} failed)"

        quiet = run("answering")
        proxy.stall = True
        stalled = run("stalled")
        target = ("the same as answering" if phase == 1 else
                  "slowest <= 2 s + 1.5 s (each request's budget of waits on DynamoDB) + MySQL")
        figure("10", f"phase {phase}: median, slowest request with DynamoDB answering", quiet, "-")
        figure("10", f"phase {phase}: median, slowest request with DynamoDB stalled", stalled, target)
        proxy.stall = False
        proxy.cut = True
        proxy.close()
        app.extensions["shop"].runtime.close()
    ddb.stop()


def scenario_parallel_writers(tmp, writers):
    print(f"\n11. {writers} parallel writers on one row, through the API, in phases 3 and 4", flush=True)
    from shop.aspects import PRESETS
    from tests.conftest import Api
    from concurrent.futures import ThreadPoolExecutor
    ddb = DynamoDBLocal(Path(tmp) / "s9").start()
    for phase in (3, 4):
        app = fresh_app(settings(dynamodb_endpoint=ddb.endpoint, dynamodb_table_prefix=f"rel{phase}",
                                 shop_flags=str(PRESETS[phase - 1].flags)))
        api = Api(app.test_client())
        token, product = seller_and_product(api, 100_000)
        _, buyer = api.register()
        start = threading.Barrier(writers)

        def answered(response):
            """The status, and for a 5xx the error type the API named (what to look for when it is not 0)."""
            body = response.get_json(silent=True) or {}
            return response.status_code, (body.get("error") or {}).get("type") if response.status_code >= 500 else None

        def add(i):
            client = Api(app.test_client())
            start.wait(60)
            return answered(client.call("POST", "/api/cart/items", buyer, {"productId": product["id"], "quantity": 1}))

        def stock(i):
            client = Api(app.test_client())
            start.wait(60)
            return answered(client.call("PUT", f"/api/products/{product['id']}/inventory", token,
                                        {"inventory_quantity": 1000 + i}))

        for what, write in (("cart adds", add), ("inventory updates", stock)):
            with ThreadPoolExecutor(writers) as pool:
                outcomes = list(pool.map(write, range(writers)))
            statuses = [c for c, _ in outcomes]
            errors = Counter(f"{c} {kind}" for c, kind in outcomes if c >= 500)
            diverged = divergent(app)
            recorded = {(e["entity"], e["entity_id"]) for e in app.extensions["shop"].runtime.repair_log.pending()}
            figure("11", f"phase {phase}, {writers} parallel {what}: answered 2xx / 4xx / 5xx",
                   f"{sum(200 <= c < 300 for c in statuses)} / {sum(400 <= c < 500 for c in statuses)}"
                   f" / {sum(c >= 500 for c in statuses)}" + (f" ({', '.join(f'{n} x {k}' for k, n in errors.items())})"
                                                             if errors else ""), "5xx 0")
            figure("11", f"phase {phase}, {writers} parallel {what}: divergent after the run, unrecorded",
                   f"{len(diverged)}, {len(diverged - recorded)}", "0 unrecorded")
        stats = app.extensions["shop"].runtime.stats.snapshot()
        figure("11", f"phase {phase}: copies applied / superseded (a newer one was there)",
               f"{stats['mirrors'].get('applied', 0)} / {stats['mirrors'].get('superseded', 0)}", "-")
        app.extensions["shop"].runtime.close()
    ddb.stop()


def server_env(**extra) -> dict:
    """A production-configured server over this run's database (phase 1: MySQL only)."""
    return {"MYSQL_DATABASE": RELIABILITY_DB, "DYNAMODB_TABLE_PREFIX": "rel", "SHOP_ENV": "production",
            "SECRET_KEY": "reliability-secret-key-long-enough-0123", "SHOP_FLAGS": "READ_MYSQL,WRITE_MYSQL",
            "OTEL_TRACES_EXPORTER": "none", "LOG_LEVEL": "WARNING", "SHOP_CALL_LOG_LEVEL": "WARNING", **extra}


def scenario_slow_clients(tmp, seconds, plain=False):
    """Many more half-sent requests than gunicorn has threads, and ordinary requests meanwhile."""
    from reliability import served
    from reliability.slow_clients import SlowClients, describe, timed_requests
    kind = "gunicorn" if plain else "serve"
    print(f"\n8. Slow clients: 64 sockets with half a header, 16 with a body announced and never sent"
          f" ({'gunicorn alone, as make run' if plain else 'make serve: nginx in front of gunicorn'})", flush=True)
    app = fresh_app(settings())
    app.extensions["shop"].runtime.close()
    port = int(os.environ.get("RELIABILITY_PORT") or served.free_port())
    server = served.Server(kind, port, server_env(RATE_LIMIT_ENABLED="false"), Path(tmp) / f"s8-{kind}.log")
    path = "/api/products?limit=5"
    try:
        figure("8", f"{kind}: ordinary requests, nothing held", describe(timed_requests("127.0.0.1", port, path, 3)),
               "")
        with SlowClients("127.0.0.1", port, partial=64, no_body=16) as slow:
            wait = threading.Event()
            wait.wait(1.0)  # the server accepts them (and hands them to threads) first
            held = timed_requests("127.0.0.1", port, path, seconds)
            figure("8", f"{kind}: ordinary requests while 80 slow sockets are held (8 threads)", describe(held),
                   "all answered, median as with nothing held")
            figure("8", f"{kind}: slow sockets the server closed after its timeouts (each reopened at once)",
                   slow.cut, "0 for gunicorn alone; nginx: all, every 10 s")
    finally:
        server.stop()


def scenario_operator_brute_force(tmp, guesses):
    """Guessing an operator's secret through the production server, 8 guesses at a time."""
    import base64
    import http.client
    from concurrent.futures import ThreadPoolExecutor
    from reliability import served
    from shop.operators.accounts import Editing, hash_secret
    print(f"\n9. Guessing an operator's secret: {guesses} wrong guesses, 8 at a time, then the right one"
          " (make serve, 2 workers)", flush=True)
    app = fresh_app(settings())
    app.extensions["shop"].runtime.close()
    accounts, secret = str(Path(tmp) / "operators"), "amber-Kettle-42-window"
    with Editing(accounts) as found:
        found["alice"] = hash_secret(secret, 12)  # the production cost
    port = int(os.environ.get("RELIABILITY_PORT") or served.free_port())
    log = Path(tmp) / "s9.log"
    server = served.Server("serve", port, server_env(SHOP_OPERATORS_FILE=accounts, LOG_LEVEL="INFO",
                                                     RATE_LIMIT_KEY_PREFIX=f"s9-{time.time()}"), log)

    def attempt(name, guess):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        token = base64.b64encode(f"{name}:{guess}".encode()).decode()
        try:
            conn.request("GET", "/flags/health.json", headers={"Authorization": f"Basic {token}"})
            r = conn.getresponse()
            r.read()
            return r.status, r.getheader("Retry-After")
        finally:
            conn.close()

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: attempt("alice", f"guess-{n}"), range(guesses)))
        took = time.perf_counter() - started
        statuses = [a[0] for a in answers]
        figure("9", "wrong guesses answered 401 / 429",
               f"{statuses.count(401)} / {statuses.count(429)} in {took:.1f} s", "4, then 429 (5 failures lock)")
        figure("9", "guesses checked against the secret", log.read_text().count('"operator sign-in failed"'),
               "5, and at most one more per server thread already checking one")
        right = attempt("alice", secret)
        figure("9", "the right secret during the lockout", f"{right[0]}, Retry-After {right[1]} s", "429")
        figure("9", "another account from the same address", attempt("bob", secret)[0], "429 (the address is locked)")
        figure("9", "lockouts logged (WARNING operator locked out)", log.read_text().count('"operator locked out"'),
               "1 (account and address locked by the same failure)")
    finally:
        server.stop()


def scenario_properties(examples):
    print("\n6. Property-based: comparator, cookies, configuration", flush=True)
    from datetime import datetime, timezone
    from hypothesis import HealthCheck, given, settings as hs, strategies as st
    from shop.aspects.compare import diff
    from shop.domain import Product

    T = datetime(2026, 1, 1)
    counts = {"equivalent": 0, "false": 0, "mutated": 0, "missed": 0}
    product = st.builds(
        lambda pid, price, qty, name, desc, micro: Product(pid, 1, 2, name, desc, price, qty, None,
                                                           T.replace(microsecond=micro), T, "c", "s", "e"),
        st.integers(1, 10**9), st.decimals(0, 999999, places=2, allow_nan=False), st.integers(0, 10**6),
        st.text(min_size=1, max_size=20), st.one_of(st.none(), st.text(max_size=20)), st.integers(0, 999999))

    @hs(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(p=product)
    def equivalent(p):
        twin = replace(p, price=float(p.price) if p.price < 10**6 else p.price, inventory_quantity=Decimal(p.inventory_quantity),
                       description=p.description or ("" if p.description is None else p.description),
                       created_at=p.created_at.replace(microsecond=0, tzinfo=timezone.utc),
                       updated_at=p.updated_at.replace(tzinfo=timezone.utc))
        counts["equivalent"] += 1
        counts["false"] += bool(diff(p, twin))

    mutations = [lambda p: replace(p, price=p.price + Decimal("0.01")), lambda p: replace(p, name=p.name + "x"),
                 lambda p: replace(p, inventory_quantity=p.inventory_quantity + 1),
                 lambda p: replace(p, description=(p.description or "") + "y"), lambda p: replace(p, id=p.id + 1),
                 lambda p: replace(p, created_at=p.created_at.replace(second=1))]

    @hs(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(p=product, m=st.sampled_from(range(len(mutations))))
    def mutated(p, m):
        counts["mutated"] += 1
        counts["missed"] += not diff(p, mutations[m](p))

    equivalent()
    mutated()
    figure("6", "comparator false mismatches over equivalent pairs", f"{counts['false']} of {counts['equivalent']}", "0")
    figure("6", "comparator missed differences over mutated pairs", f"{counts['missed']} of {counts['mutated']}", "0")

    from shop import create_app
    from shop.config import ConfigError, Settings
    app = create_app(settings(mysql_database=TEST_DB))
    client = app.test_client()
    errors = {"cookies": 0, "config": 0}
    tried = {"cookies": 0, "config": 0}

    @hs(max_examples=max(200, examples // 10), deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(value=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=';,"\\'),
                         max_size=400))
    def cookies(value):
        client.set_cookie("shop_flags", value)
        tried["cookies"] += 1
        errors["cookies"] += client.get("/flags/health.json").status_code >= 500

    @hs(max_examples=max(200, examples // 10), deadline=None, suppress_health_check=list(HealthCheck), database=None)
    # An environment variable cannot hold NUL or lone surrogates: the OS refuses them, not us.
    @given(value=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                         max_size=60) | st.lists(st.sampled_from(["READ_MYSQL", "READ_DDB", "WRITE_MYSQL",
                                                                   "WRITE_DDB", "read_ddb", " ", "X"]),
                                                 max_size=5).map(",".join))
    def config(value):
        tried["config"] += 1
        os.environ["SHOP_FLAGS"] = value
        try:
            Settings.from_env()
        except ConfigError:
            pass
        except Exception:
            errors["config"] += 1
        finally:
            os.environ.pop("SHOP_FLAGS", None)

    cookies()
    config()
    figure("6", "fuzzed flag cookies answered with a 5xx", f"{errors['cookies']} of {tried['cookies']}", "0")
    figure("6", "fuzzed SHOP_FLAGS values failing other than ConfigError", f"{errors['config']} of {tried['config']}", "0")
    app.extensions["shop"].runtime.close()


def main() -> None:
    # Set here, not at import: the quick scenarios also run inside the test session.
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ.setdefault("SHOP_CALL_LOG_LEVEL", "DEBUG")
    global RELIABILITY_DB
    # Through the environment, so the worker process of scenario 3 uses the same database.
    os.environ.setdefault("SHOP_RELIABILITY_DATABASE",
                          os.environ.get("MYSQL_DATABASE", "online_shopping_store") + "_reliability")
    RELIABILITY_DB = os.environ["SHOP_RELIABILITY_DATABASE"]
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller figures, for a fast check")
    parser.add_argument("--only", type=int, action="append", help="run only these scenarios (repeatable)")
    parser.add_argument("--plain-gunicorn", action="store_true",
                        help="scenario 8 against gunicorn alone (as make run serves), to see what it prevents")
    args = parser.parse_args()
    quick = args.quick
    scenarios = {
        1: lambda tmp: scenario_dynamodb_outage(tmp, seconds=6 if quick else 12),
        2: lambda tmp: scenario_mysql_down(tmp, requests=10 if quick else 50),
        3: lambda tmp: scenario_killed_worker(tmp, count=3 if quick else 10),
        4: lambda tmp: scenario_last_items(tmp, buyers=6 if quick else 12, stock=3 if quick else 5),
        5: scenario_slow_dynamodb,
        7: lambda tmp: scenario_stalled_dual_writes(tmp, requests=20 if quick else 40),
        8: lambda tmp: scenario_slow_clients(tmp, seconds=6 if quick else 15, plain=args.plain_gunicorn),
        9: lambda tmp: scenario_operator_brute_force(tmp, guesses=100 if quick else 600),
        10: lambda tmp: scenario_stalled_phases(tmp, requests=64 if quick else 160),
        11: lambda tmp: scenario_parallel_writers(tmp, writers=30),
        6: lambda tmp: scenario_properties(examples=1000 if quick else 10_000),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for number, run in scenarios.items():
            if not args.only or number in args.only:
                run(tmp)
    print("\n| scenario | figure | measured | target |\n|---|---|---|---|")
    for row in FIGURES:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
