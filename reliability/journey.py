"""The migration journey, for real: one live dataset under continuous mixed traffic while an
operator steps a gunicorn server (2 workers) 1 -> 2 -> backfill -> 3 -> 4 -> 5 -> 4 -> 3 -> 2 -> 1
at runtime, with a DynamoDB outage during phases 2 and 3 and a worker killed mid-write.

Phase 3 is walked gradually, as a team would: a DynamoDB outage the guard answers by stepping
back to phase 2 by itself, the operator's re-promotion, 10% of requests compared in shadow, the
read canary ramped 5 -> 50 -> 100 behind its evidence gates, a mismatch injected at 50 % (items
changed in DynamoDB behind the application) that the guard answers by stepping the canary back,
then repair, verify, and the ramp again before phase 4.

    make journey        (or: .venv/bin/python -m reliability.journey [--seconds S])

Shoppers and sellers talk HTTP to the server; one tester browser flips its flag cookie among all
five phases. The operator uses the same PhaseControl as `flask phase set`, from this process.
Reported per step and at the end: requests, unexpected 5xx (503s while DynamoDB is down are
expected and counted apart), acknowledged writes missing from the authoritative store, divergent
entities after the final repair and verify, id collisions. Loops are bounded in time and count.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reliability.proxy import Proxy  # noqa: E402
from tests.conftest import wait_for_port  # noqa: E402
from tests.ddb_local import free_port  # noqa: E402

DB = os.environ.get("SHOP_JOURNEY_DATABASE", os.environ.get("MYSQL_DATABASE", "online_shopping_store") + "_journey")
PREFIX = "journey"
SECRET = "journey-secret-key-that-is-long-enough-0123456789"
PASSWORD = "Secret123!"
CARD = {"cardNumber": "4242424242424242", "expiryDate": "12/30", "cvv": "123", "cardholderName": "Journey Tester"}
MAX_REQUESTS = 20_000  # a bound on the whole run, whatever the timings


@dataclass
class Step:
    name: str
    requests: int = 0
    unexpected_5xx: int = 0
    expected_503: int = 0
    connection_errors: int = 0
    statuses: Counter = field(default_factory=Counter)
    notes: list = field(default_factory=list)


class Traffic:
    """Shoppers, sellers and one tester browser, recording every acknowledged write."""

    def __init__(self, base: str):
        self.base = base
        self.lock = threading.Lock()
        self.step = Step("setup")
        self.stop = threading.Event()
        self.outage = threading.Event()
        self.outage_ended = float("-inf")
        self.users: dict[int, tuple[str, str]] = {}        # id -> (username, token)
        self.products: dict[int, str] = {}                 # id -> name
        self.orders: dict[int, int] = {}                   # id -> user id
        self.collisions: list[str] = []
        self.total = 0
        self.catalog: list[int] = []

    # --- one request ------------------------------------------------------------------------

    def call(self, session, method, path, **kw):
        with self.lock:
            if self.total >= MAX_REQUESTS:
                self.stop.set()
            self.total += 1
            self.step.requests += 1
        try:
            r = session.request(method, self.base + path, timeout=30, **kw)
        except requests.RequestException:
            with self.lock:
                self.step.connection_errors += 1  # e.g. the worker killed under it: not acknowledged
            return None
        with self.lock:
            self.step.statuses[r.status_code] += 1
            # Requests already waiting on DynamoDB when it came back finish within its client timeout.
            if r.status_code == 503 and (self.outage.is_set() or time.monotonic() - self.outage_ended < 5):
                self.step.expected_503 += 1
            elif r.status_code >= 500:
                self.step.unexpected_5xx += 1
                self.step.notes.append(f"{method} {path} -> {r.status_code}: {r.text[:200]}")
        return r

    def register(self, session, seller=False):
        name = f"j{random.getrandbits(40):x}"
        r = self.call(session, "POST", "/api/auth/register",
                      json={"username": name, "email": f"{name}@example.com", "password": PASSWORD})
        if r is None or r.status_code != 201:
            return None
        data = r.json()["data"]
        user_id, token = data["user"]["id"], data["token"]
        with self.lock:
            if user_id in self.users:
                self.collisions.append(f"user id {user_id} given to {self.users[user_id][0]} and {name}")
            self.users[user_id] = (name, token)
        if seller:
            self.call(session, "POST", "/api/auth/upgrade-seller", headers=_auth(token))
        return user_id, token

    # --- actors -----------------------------------------------------------------------------

    def shopper(self, seed):
        rnd = random.Random(seed)
        session = requests.Session()
        me, rounds = None, 0
        while not self.stop.is_set():
            if me is None or rounds % 8 == 0:  # a returning customer, now and then a new one
                me = self.register(session) or me
                if me is None:
                    continue
            rounds += 1
            _, token = me
            self.call(session, "GET", "/api/auth/profile", headers=_auth(token))
            for _ in range(rnd.randint(1, 3)):
                if self.stop.is_set() or not self.catalog:
                    break
                pid = rnd.choice(self.catalog)
                self.call(session, "GET", f"/api/products/{pid}")
                self.call(session, "GET", "/api/categories")  # the product page's category menu
                self.call(session, "POST", "/api/cart/items", headers=_auth(token),
                          json={"productId": pid, "quantity": rnd.randint(1, 2)})
            self.call(session, "GET", "/api/cart", headers=_auth(token))
            r = self.call(session, "POST", "/api/orders/checkout", headers=_auth(token),
                          json={"paymentMethod": "credit_card", "paymentDetails": CARD})
            if r is not None and r.status_code in (200, 201):
                order = r.json()["data"]["order"]
                with self.lock:
                    if order["id"] in self.orders:
                        self.collisions.append(f"order id {order['id']} given twice")
                    self.orders[order["id"]] = me[0]
            self.call(session, "GET", "/api/products?limit=5")
            time.sleep(0.2)  # a shopper's pace

    def seller(self, seed):
        rnd = random.Random(seed)
        session = requests.Session()
        me = None
        while not self.stop.is_set() and me is None:
            me = self.register(session, seller=True)
        token = me[1] if me else None
        category = None
        while not self.stop.is_set():
            if category is None:
                r = self.call(session, "POST", "/api/categories", headers=_auth(token),
                              json={"name": f"Journey {rnd.getrandbits(32):x}"})
                if r is not None and r.status_code == 201:
                    category = r.json()["data"]["category"]["id"]
                continue
            name = f"Item {rnd.getrandbits(32):x}"
            r = self.call(session, "POST", "/api/products", headers=_auth(token), json={
                "name": name, "description": "journey", "price": rnd.randint(1, 99), "inventory_quantity": 1000,
                "category_id": category})
            if r is not None and r.status_code == 201:
                pid = r.json()["data"]["product"]["id"]
                with self.lock:
                    if pid in self.products:
                        self.collisions.append(f"product id {pid} given twice")
                    self.products[pid] = name
                    self.catalog.append(pid)
                self.call(session, "PUT", f"/api/products/{pid}", headers=_auth(token),
                          json={"price": rnd.randint(1, 99)})
            time.sleep(1.0)  # a seller's pace: a shopper load with a trickle of catalog changes

    def tester(self, seed):
        """One browser trying every phase through its cookie, shopping as it goes."""
        rnd = random.Random(seed)
        session = requests.Session()
        keys = ["mysql-only", "dual-write", "dual-read", "read-ddb", "ddb-only"]
        while not self.stop.is_set():
            page = self.call(session, "GET", "/flags")
            if page is None or page.status_code != 200:
                continue
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            self.call(session, "POST", f"/flags/preset/{rnd.choice(keys)}",
                      data={"csrf_token": token, "confirm_risk": "yes"}, allow_redirects=False)
            self.call(session, "GET", "/")
            self.register(session)
            if self.catalog:
                self.call(session, "GET", f"/products/{rnd.choice(self.catalog)}")


ENTITIES = ["user", "category", "product", "cart", "order"]


def tamper(state, traffic) -> int:
    """An injected mismatch: the products shoppers read, renamed in DynamoDB behind the app."""
    from shop.repositories.dynamodb import keys
    from shop.repositories.dynamodb.client import encode
    dynamo = state.dynamo
    with traffic.lock:
        products = list(traffic.catalog)
    for pid in products:
        dynamo.client.update_item(TableName=dynamo.table("catalog"), Key=encode(keys.product(pid)),
                                  UpdateExpression="SET #n = :n", ExpressionAttributeNames={"#n": "name"},
                                  ExpressionAttributeValues=encode({":n": "changed behind the app"}))
    return len(products)


def _auth(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=4.0, help="traffic held in each step")
    parser.add_argument("--shoppers", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")

    from shop import create_app
    from shop.config import Settings
    from shop.migration import jobs
    from shop.migration.control import PhaseControl
    from shop.prepare import prepare

    proxy = Proxy(int(os.environ.get("DDB_PORT", "8000")))
    env_settings = {
        "MYSQL_DATABASE": DB, "DYNAMODB_TABLE_PREFIX": PREFIX, "DYNAMODB_ENDPOINT": f"http://127.0.0.1:{proxy.port}",
        "SECRET_KEY": SECRET, "SHOP_ENV": "development", "RATE_LIMIT_ENABLED": "false", "BCRYPT_ROUNDS": "4",
        "SHOP_FLAGS": "READ_MYSQL,WRITE_MYSQL", "SHOP_PHASE_REFRESH_MS": "500", "SHOP_GATE_COMPARE_WINDOW_S": "0",
        # Evidence sized for a run of seconds, not hours (gathered over each whole step: window 0);
        # DynamoDB Local shares this machine's two
        # cores with the load, so its p99 is not AWS's: the guard's latency floor is raised for it.
        "SHOP_GATE_MIN_COMPARISONS": "20", "SHOP_GUARD_MIN_SAMPLES": "10", "SHOP_GUARD_WINDOW_S": "10",
        "SHOP_LIMIT_LATENCY_FLOOR_MS": "1500",
        # and under the copy back's load it times out a read now and then: one in ten reads is not
        # an outage (an outage fails them all), so the error limit is raised from 5 % to 25 %.
        "SHOP_LIMIT_ERROR_RATE": "0.25",
        "DYNAMODB_CONNECT_TIMEOUT": "1", "DYNAMODB_READ_TIMEOUT": "2", "DYNAMODB_MAX_ATTEMPTS": "2",
        "SHOP_DUAL_WRITE_TIMEOUT_MS": "1500", "SHOP_DUAL_READ_TIMEOUT_MS": "1500", "SHOP_BREAKER_COOLDOWN_S": "2",
        "OTEL_TRACES_EXPORTER": "none", "LOG_LEVEL": "WARNING", "SHOP_CALL_LOG_LEVEL": "DEBUG",
    }
    os.environ.update(env_settings)
    app = create_app(Settings.from_env())
    state = app.extensions["shop"]
    from shop.repositories.dynamodb.tables import delete_tables
    delete_tables(state.dynamo)  # this run's own tables, empty (DynamoDB Local outlives a run)
    prepare(app, empty=True)     # and its own MySQL database, emptied
    operator = PhaseControl(state)

    port = free_port()
    # The server's log (JSON lines): kept where SHOP_JOURNEY_LOG says, to read after a run.
    server_log = open(os.environ["SHOP_JOURNEY_LOG"], "w") if os.environ.get("SHOP_JOURNEY_LOG") else subprocess.DEVNULL
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--graceful-timeout", "5", "shop:create_app()"],
        cwd=ROOT, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=server_log)
    base = f"http://127.0.0.1:{port}"
    assert wait_for_port("127.0.0.1", port, 60), "gunicorn did not start"
    traffic = Traffic(base)
    steps: list[Step] = []
    seen_steps: list[dict] = []
    unexpected: list[dict] = []  # the guard's steps back the run did not provoke
    started = time.monotonic()

    def hold(name, seconds=args.seconds):
        traffic.step = Step(name)
        steps.append(traffic.step)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not traffic.stop.is_set():
            time.sleep(0.1)
        print(f"{name:44} {traffic.step.requests:6} requests  5xx {traffic.step.unexpected_5xx}"
              f"  503 (outage) {traffic.step.expected_503}  dropped {traffic.step.connection_errors}", flush=True)

    def move(target, reason, prepare=lambda: None):
        """As an operator would: settle what the gates name, try, and after a refusal settle again
        (under traffic, a DynamoDB write slowed past its deadline is journaled for repair)."""
        for _ in range(4):
            prepare()
            result = operator.set(target, "journey operator", reason=reason)
            traffic.step.notes.append(result.message)
            if result.ok:
                return
        for s in steps:
            for note in s.notes:
                print(f"  {s.name}: {note}")
        raise SystemExit(f"phase {target} refused: {result.message}")

    def guard_step(matches, timeout):
        """The guard's audit entry this run expects, once it is there (polled; None: never came)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in operator.store.history(20):
                if entry["who"] == "guard" and entry["at"] and entry not in seen_steps and matches(entry):
                    seen_steps.append(entry)
                    traffic.step.notes.append(f"guard: {entry['reason']}")
                    return entry
            time.sleep(0.25)
        return None

    def ramp(percents, hold):
        """The canary's steps up, each behind its gates: refused while DynamoDB has not yet
        served enough reads at the step below, tried again as the evidence grows."""
        for percent in percents:
            for _ in range(15):
                if operator.view.refresh().phase != 3:  # the guard stepped back on its own: re-promote
                    unexpected.append(operator.store.history(1)[0])
                    traffic.step.notes.append(f"unexpected guard step: {unexpected[-1]['reason']}")
                    move(3, "re-promoted after the guard's step", settle_and_verify)
                    operator.expose(ENTITIES, "journey operator", compare_percent=10, compare_mode="shadow",
                                    reason="compare 10% of requests, after the answer")
                result = operator.expose(ENTITIES, "journey operator", rollout=percent, reason="ramp")
                if result.ok:
                    break
                hold(f"phase 3: gathering evidence for {percent}%", args.seconds / 2)
            traffic.step.notes.append(result.message)
            if not result.ok:
                raise SystemExit(f"the canary could not be raised to {percent}%: {result.message}")
            hold(f"phase 3: DynamoDB serves {percent}% of readers")

    threads = ([threading.Thread(target=traffic.shopper, args=(i,)) for i in range(args.shoppers)]
               + [threading.Thread(target=traffic.seller, args=(100 + i,)) for i in range(2)]
               + [threading.Thread(target=traffic.tester, args=(200,))])
    try:
        [t.start() for t in threads]
        hold("phase 1: MySQL only")
        move(2, "start dual writing")
        hold("phase 2: dual write")
        traffic.outage.set()
        proxy.cut = True
        proxy.drop_all()
        hold("phase 2: DynamoDB down")
        proxy.cut = False
        traffic.outage.clear()
        traffic.outage_ended = time.monotonic()
        hold("phase 2: DynamoDB back")
        jobs.repair(state)
        report = jobs.backfill(state, control=operator)
        traffic.step.notes.append(f"backfill {dict(report.done)}")

        def settle_and_verify():
            jobs.repair(state, divergent=True)
            check = jobs.verify(state, control=operator)
            traffic.step.notes.append(f"verify: {len(check.divergent)} divergent")
        move(3, "backfilled and verified", settle_and_verify)
        hold("phase 3: dual read, every request compared")
        traffic.outage.set()
        proxy.cut = True
        proxy.drop_all()
        hold("phase 3: DynamoDB down", args.seconds / 2)
        stepped = guard_step(lambda e: e["to"] == "2", args.seconds * 2)
        proxy.cut = False
        traffic.outage.clear()
        traffic.outage_ended = time.monotonic()
        hold("phase 2: the guard's step back")
        if stepped is None:
            raise SystemExit("the guard did not step back from phase 3 while DynamoDB was down")
        move(3, "DynamoDB is back: re-promoted", settle_and_verify)
        exposed = operator.expose(ENTITIES, "journey operator", compare_percent=10, compare_mode="shadow",
                                  reason="compare 10% of requests, after the answer")
        traffic.step.notes.append(exposed.message)
        hold("phase 3: 10% compared, shadow")
        ramp((5, 50), hold)
        # A divergence that keeps coming back (as a faulty writer would make it): checkouts copy
        # the products they sell whole, healing those, so the products are changed again and again.
        deadline, stepped, tampered = time.monotonic() + args.seconds * 8, None, 0
        while stepped is None and time.monotonic() < deadline:
            tampered += tamper(state, traffic)
            stepped = guard_step(lambda e: "50% -> 25%" in e["reason"], 1.0)
        traffic.step.notes.append(f"{tampered} product items changed in DynamoDB behind the application")
        if stepped is None:
            raise SystemExit("the guard did not step the canary back after the injected mismatch")
        hold("phase 3: the guard's step back (canary 25%)")
        settle_and_verify()  # the operator: repair what differs, verify the stores equal again
        ramp((50, 100), hold)
        move(4, "comparisons clean, the canary at 100%", settle_and_verify)
        hold("phase 4: read DynamoDB")
        workers = _workers(server.pid)
        if workers:
            os.kill(random.choice(workers), signal.SIGKILL)  # mid-write: it was serving the load
        hold("phase 4: a worker killed")
        move(5, "DynamoDB takes over", settle_and_verify)  # and what the killed worker wrote to MySQL alone
        hold("phase 5: DynamoDB only")
        move(4, "roll back")
        hold("phase 4 again")
        move(3, "roll back")
        hold("phase 3 again")
        move(2, "roll back")
        hold("phase 2 again")
        traffic.stop.set()
        [t.join(60) for t in threads]
        jobs.repair(state, divergent=True)
        final = jobs.verify(state)
        move(1, "journey complete")
        missing = _missing(state, traffic)
        own = _tokens_resolve(traffic)
    finally:
        traffic.stop.set()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        proxy.close()

    print()
    total = sum(s.requests for s in steps)
    bad = sum(s.unexpected_5xx for s in steps)
    print(f"requests {total}, unexpected 5xx {bad} (target 0), 503 during outages "
          f"{sum(s.expected_503 for s in steps)}, dropped by the killed worker {sum(s.connection_errors for s in steps)}")
    print(f"acknowledged writes missing from the authoritative store: {len(missing)} (target 0)"
          f" of {len(traffic.users)} users, {len(traffic.products)} products, {len(traffic.orders)} orders")
    print(f"divergent entities after the final repair and verify: {len(final.divergent)} of "
          f"{sum(final.compared.values())} (target 0)")
    print(f"id collisions: {len(traffic.collisions) + own} (target 0)")
    print(f"guard steps back: {len(seen_steps)} provoked (expected 2: the outage, the injected mismatch),"
          f" {len(unexpected)} not provoked (target 0)")
    print(f"run time {time.monotonic() - started:.0f} s")
    print("\n| step | requests | unexpected 5xx | 503 while DynamoDB was down | dropped connections |")
    print("|---|---|---|---|---|")
    for s in steps:  # each step's figures include the operator's work that followed it
        print(f"| {s.name} | {s.requests} | {s.unexpected_5xx} | {s.expected_503} | {s.connection_errors} |")
    for s in steps:
        for note in s.notes[:5]:
            print(f"  {s.name}: {note}")
    for m in missing[:10]:
        print("  missing:", m)
    for d in final.divergent[:10]:
        print("  divergent:", d)
    for f in final.failed[:5]:
        print("  verify failed:", f)
    state.runtime.close()
    ok = not bad and not missing and not final.divergent and not traffic.collisions and not own
    return 0 if ok else 1


def _workers(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _missing(state, traffic) -> list[str]:
    """Every acknowledged write, read back from the authoritative store (MySQL, phase 1)."""
    from shop import Repositories
    mysql = Repositories.mysql(state.db)
    missing = []
    for uid, (name, _) in traffic.users.items():
        user = mysql.users.get_by_id(uid)
        if user is None or user.username != name:
            missing.append(f"user {uid} {name}: {user.username if user else 'absent'}")
    for pid, name in traffic.products.items():
        p = mysql.products.get_by_id(pid)
        if p is None or p.name != name:
            missing.append(f"product {pid} {name}")
    for oid, uid in traffic.orders.items():
        o = mysql.orders.get_by_id(oid)
        if o is None or o.user_id != uid:
            missing.append(f"order {oid} of user {uid}")
    return missing


def _tokens_resolve(traffic) -> int:
    """Every token issued during the journey still names the account it was issued to."""
    crossed = 0
    from shop import create_app  # the server is gone: ask a fresh app, as a worker would
    from shop.config import Settings
    app = create_app(Settings.from_env())
    client = app.test_client()
    for uid, (name, token) in list(traffic.users.items())[:300]:
        r = client.get("/api/auth/profile", headers=_auth(token))
        if r.status_code == 200 and r.get_json()["data"]["user"]["username"] != name:
            crossed += 1
    app.extensions["shop"].runtime.close()
    return crossed


if __name__ == "__main__":
    sys.exit(main())
