"""Fixtures over real services: MariaDB (test database) and, later, DynamoDB Local.

Data is unique per test (random names), so tests need no teardown and can run in any order.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from urllib.parse import urlparse

os.environ.setdefault("OTEL_TRACES_EXPORTER", "none")
# Bare Settings.from_env() calls (configuration tests) need a key; `make test` exports one.
os.environ.setdefault("SECRET_KEY", __import__("secrets").token_urlsafe(48))

import pytest  # noqa: E402

from shop import create_app  # noqa: E402
from shop.config import Settings  # noqa: E402
from shop.db import Database  # noqa: E402

TEST_DB = os.environ.get("MYSQL_TEST_DATABASE",
                         os.environ.get("MYSQL_DATABASE", "online_shopping_store") + "_test")
PASSWORD = "Secret123!"


def poll(condition, timeout: float = 10.0, what: str | None = None, every: float = 0.05):
    """Call `condition` until it returns something truthy, up to `timeout` seconds, and return
    that. On timeout: raise naming `what`, or, without `what`, return the last (falsy) value.
    Between attempts the thread waits on an event nobody sets: a cap on the polling rate, not
    a delay standing in for readiness."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            break
        pause.wait(every)
    if not value and what is not None:
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
    return value


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> bool:
    """Whether something accepts connections on host:port within `timeout` seconds."""
    return poll(lambda: _accepts(host, port), timeout, every=0.2)


# This session's DynamoDB tables. Never the environment's prefix: that is the developer's own store
# (`make run`'s "shop"), whose stored phase an app made here would follow and write into.
SESSION_PREFIX = f"t{uuid.uuid4().hex[:8]}"


def make_settings(**overrides) -> Settings:
    # The guard steps reads back on its own thread: off unless a test is about it (tests/test_guard.py).
    # Without a prefix of its own, an app gets tables nobody creates (its DynamoDB calls fail, as
    # against an absent store), not the session's nor the developer's.
    base = dict(mysql_database=TEST_DB, bcrypt_rounds=4, rate_limit_enabled=False, testing=True, shop_env="development",
                secret_key="test-secret-key-that-is-long-enough-0123456789", guard_enabled=False,
                dynamodb_table_prefix=f"{SESSION_PREFIX}none")
    base.update(overrides)
    return Settings.from_env(**base)


@pytest.fixture(scope="session")
def settings() -> Settings:
    # Each session has its own DynamoDB tables (a random prefix), deleted at the end.
    s = make_settings(dynamodb_table_prefix=SESSION_PREFIX)
    if not wait_for_port(s.mysql_host, s.mysql_port):
        pytest.exit(f"MySQL is not reachable at {s.mysql_host}:{s.mysql_port}; run `make services`", 2)
    endpoint = urlparse(s.dynamodb_endpoint or "http://127.0.0.1:8000")
    if not wait_for_port(endpoint.hostname, endpoint.port or 80):
        pytest.exit(f"DynamoDB Local is not reachable at {s.dynamodb_endpoint}; run `make services`", 2)
    return s


@pytest.fixture(scope="session")
def app(settings):
    """The application under the flags of SHOP_FLAGS, over empty stores.

    Both stores start empty, so under dual reads whole-table listings agree as long as
    every write went through the routing layer.
    """
    from shop.repositories.dynamodb.tables import delete_tables
    from shop.prepare import prepare

    application = create_app(settings)
    state = application.extensions["shop"]
    prepare(application, empty=True)
    yield application
    delete_tables(state.dynamo)
    state.runtime.close()
    state.db.close()


@pytest.fixture(scope="session")
def db(app) -> Database:
    return app.extensions["shop"].db


@pytest.fixture(scope="session")
def dynamo(app):
    return app.extensions["shop"].dynamo


@pytest.fixture(scope="session")
def store_dynamo(settings):
    """Tables of their own for tests that write DynamoDB directly, so the ids its counters
    allocate never meet the MySQL ids that dual writes put in the app's tables."""
    from shop.repositories.dynamodb import Dynamo
    from shop.repositories.dynamodb.tables import create_tables, delete_tables

    d = Dynamo(replace(settings, dynamodb_table_prefix=settings.dynamodb_table_prefix + "s"))
    create_tables(d)
    yield d
    delete_tables(d)


@pytest.fixture(params=["mysql", "dynamodb"])
def repos(request, db, store_dynamo):
    """Each repository family in turn, unrouted: the contract suite runs once per store."""
    from shop import Repositories
    if request.param == "mysql":
        return Repositories.mysql(db)  # not bound to the routing layer: plain MySQL
    return Repositories.dynamodb(store_dynamo)


@pytest.fixture
def client(app):
    return app.test_client()


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Api:
    """A small client speaking the JSON API the way the reference frontend does."""

    def __init__(self, client):
        self.client = client

    def call(self, method, path, token=None, json=None, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, json=json, headers=headers, **kw)

    def register(self, seller=False, **fields):
        name = fields.pop("username", unique())
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD, **fields}
        r = self.call("POST", "/api/auth/register", json=body)
        assert r.status_code == 201, r.get_json()
        token = r.get_json()["data"]["token"]
        user = r.get_json()["data"]["user"]
        if seller:
            assert self.call("POST", "/api/auth/upgrade-seller", token).status_code == 200
            user["is_seller"] = True
        return user, token

    def category(self, token, name=None, parent_id=None):
        body = {"name": name or unique("Cat ")}
        if parent_id:
            body["parent_id"] = parent_id
        r = self.call("POST", "/api/categories", token, body)
        assert r.status_code == 201, r.get_json()
        return r.get_json()["data"]["category"]

    def product(self, token, category_id, **fields):
        body = {"name": unique("Product "), "description": "A fine thing", "price": 19.9,
                "inventory_quantity": 10, "category_id": category_id, **fields}
        r = self.call("POST", "/api/products", token, body)
        assert r.status_code == 201, r.get_json()
        return r.get_json()["data"]["product"]


@pytest.fixture
def api(client):
    return Api(client)


@pytest.fixture
def seller(api):
    """A seller with a category and a product: (user, token, category, product)."""
    user, token = api.register(seller=True)
    cat = api.category(token)
    prod = api.product(token, cat["id"])
    return user, token, cat, prod


def money(x) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def forget_phase(app) -> None:
    """Back to "nothing stored": the server routes by SHOP_FLAGS again (tests that change the
    server's phase on the shared test database leave it as they found it)."""
    from shop.repositories.dynamodb.client import encode
    state = app.extensions["shop"]
    with state.db.cursor(write=True) as cur:
        cur.execute("DELETE FROM migration_state")
    state.dynamo.call("delete_item", TableName=state.dynamo.table("counters"), Key=encode({"PK": "MIGRATION#server"}))
    state.runtime.phase.refresh()


_MADE: list = []  # the DynamoDB of every journey_apps() call: its tables are deleted at the session's end


@pytest.fixture(scope="session", autouse=True)
def _delete_journey_tables():
    yield
    from shop.repositories.dynamodb.tables import delete_tables
    for dynamo in _MADE:
        try:
            delete_tables(dynamo)
        except Exception:  # noqa: BLE001 - DynamoDB Local gone: nothing left to delete
            pass


def journey_apps(n: int = 1, **overrides) -> list:
    """`n` applications (workers) over the journey database and DynamoDB tables of their own,
    emptied: for tests that store phases. The tables are deleted when the session ends."""
    from shop.prepare import prepare
    prefix = f"g{uuid.uuid4().hex[:8]}"
    apps = [create_app(make_settings(mysql_database=TEST_DB + "_journey", dynamodb_table_prefix=prefix, **overrides))
            for _ in range(n)]
    prepare(apps[0], empty=True)
    _MADE.append(apps[0].extensions["shop"].dynamo)
    return apps


def in_phase_3(app, product_name: str = "Lamp"):
    """Phase 2 from the start (DynamoDB holds every record without a backfill), a seller's
    product, then phase 3 (forced: no backfill to wait for). Returns (api, control, product)."""
    from shop.migration.control import PhaseControl
    control = PhaseControl(app.extensions["shop"])
    assert control.set(2, "pytest", force=True, reason="tests of phase 3").ok
    api = Api(app.test_client())
    _, seller = api.register(seller=True)
    product = api.product(seller, api.category(seller)["id"], name=product_name)
    assert control.set(3, "pytest", force=True, reason="tests of phase 3").ok
    return api, control, product
