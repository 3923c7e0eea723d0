"""A write transaction is one MySQL session from its first statement to its commit.

DBUtils' pooled connections re-run a statement that failed on a lost connection on a new
session unless they know a transaction is open: the statements before it were rolled back with
the old session, the ones after it committed on the new one. `make journey` ended once with an
order in DynamoDB that MySQL had lost that way (a checkout's statement timed out mid-transaction,
the rest committed, the router mirrored the result). A write transaction is begun explicitly,
so a lost session fails the whole call.
"""
from __future__ import annotations

import logging
import threading
import time

import pymysql
import pytest

from shop import Repositories
from shop.db import error_code, retry_deadlocks, translate
from shop.errors import StoreBusyError, StoreUnavailableError

from .conftest import unique


def test_a_session_lost_mid_transaction_fails_the_whole_write_and_commits_none_of_it(db):
    with db.cursor(write=True) as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS test_tx_split (n INT PRIMARY KEY)")
        cur.execute("DELETE FROM test_tx_split")
    admin = pymysql.connect(**{**db.connect_kwargs(), "autocommit": True})
    try:
        with pytest.raises(StoreUnavailableError):
            with db.cursor(write=True) as cur:
                cur.execute("INSERT INTO test_tx_split VALUES (1)")
                cur.execute("SELECT CONNECTION_ID() AS id")
                session = cur.fetchone()["id"]
                with admin.cursor() as kill:
                    kill.execute(f"KILL CONNECTION {int(session)}")
                cur.execute("INSERT INTO test_tx_split VALUES (2)")
        with admin.cursor() as check:
            check.execute("SELECT n FROM test_tx_split ORDER BY n")
            assert check.fetchall() == ()  # neither the first statement nor the one after the loss
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS test_tx_split")
        admin.close()


def test_reads_still_reconnect_after_a_lost_session(db):
    """A read has nothing to lose: the pool may still run it again on a new session."""
    admin = pymysql.connect(**{**db.connect_kwargs(), "autocommit": True})
    try:
        with db.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID() AS id")
            session = cur.fetchone()["id"]
        with admin.cursor() as kill:
            kill.execute(f"KILL CONNECTION {int(session)}")
        with db.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            assert cur.fetchone()["one"] == 1
    finally:
        admin.close()


# --- deadlocks: InnoDB rolls the victim back whole, so its transaction is run again -----------

def _user_and_product(db) -> tuple[int, int]:
    name = unique("dl")
    with db.cursor(write=True) as cur:
        cur.execute("INSERT INTO users (username, email, password_hash) VALUES (%s, %s, 'x')",
                    (name, f"{name}@example.com"))
        user_id = cur.lastrowid
        cur.execute("INSERT INTO categories (name) VALUES (%s)", (name,))
        category_id = cur.lastrowid
        cur.execute("INSERT INTO products (seller_id, category_id, name, price, inventory_quantity)"
                    " VALUES (%s, %s, %s, 5, 10)", (user_id, category_id, name))
        return user_id, cur.lastrowid


def _wait_until_locked(admin, user_id: int, timeout_s: float = 10.0) -> None:
    """Until the cart insert holds its new row (it then waits for the product's lock). Polled
    with NOWAIT locking reads: reading the lock tables would need the PROCESS privilege."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT id FROM shopping_carts WHERE user_id = %s FOR UPDATE NOWAIT", (user_id,))
        except pymysql.err.OperationalError as exc:
            if exc.args[0] in (1205, 3572):  # lock wait timeout / NOWAIT: the row is held
                return
            raise
    raise AssertionError("the cart insert never took its row's lock")


def _deadlock_a_cart_insert(db, user_id: int, product_id: int, add) -> dict:
    """Run `add()` (a cart insert of the product for the user) into a real deadlock, as its
    victim, and let it finish; returns {"item": ...} or {"error": ...}."""
    other = pymysql.connect(**db.connect_kwargs())
    admin = pymysql.connect(**{**db.connect_kwargs(), "autocommit": True})
    outcome: dict = {}

    def run():
        try:
            outcome["item"] = add()
        except Exception as exc:  # noqa: BLE001 - the caller's assertion names it
            outcome["error"] = exc

    try:
        with other.cursor() as cur:
            # More work done than the cart insert's, so InnoDB picks the cart insert as the victim.
            for _ in range(5):
                cur.execute("INSERT INTO categories (name) VALUES (%s)", (unique("dlw"),))
            cur.execute("SELECT id FROM products WHERE id = %s FOR UPDATE", (product_id,))
        worker = threading.Thread(target=run)
        worker.start()
        _wait_until_locked(admin, user_id)
        with other.cursor() as cur:  # waits for the cart insert, which waits for us: a cycle
            cur.execute("SELECT id FROM shopping_carts WHERE user_id = %s FOR UPDATE", (user_id,))
        other.rollback()  # the winner ends; the victim's second run can take the product's lock
        worker.join(30)
        assert not worker.is_alive()
        with admin.cursor() as cur:
            cur.execute("SELECT quantity FROM shopping_carts WHERE user_id = %s", (user_id,))
            outcome["mysql"] = cur.fetchall()
        return outcome
    finally:
        other.close()
        admin.close()


def _victims(caplog) -> list[int]:
    return [r.attempt for r in caplog.records if getattr(r, "event", None) == "mysql_deadlock"]


def test_a_deadlock_victim_runs_again_and_the_shopper_never_sees_the_deadlock(db, caplog):
    """The deadlock `make journey` met once as a 503 "Database connection failed": a cart
    insert holds its new row and waits for the product's row (the foreign-key check), while
    another transaction holds the product and then wants the user's cart rows."""
    carts = Repositories.mysql(db).carts
    user_id, product_id = _user_and_product(db)
    caplog.set_level(logging.INFO, logger="shop.db")
    outcome = _deadlock_a_cart_insert(db, user_id, product_id, lambda: carts.add_item(user_id, product_id, 2))
    assert "error" not in outcome, outcome.get("error")
    assert outcome["item"].quantity == 2
    assert _victims(caplog) == [1]  # it was the victim once, and ran again
    assert outcome["mysql"] == ((2,),)  # saved once, not twice


def test_a_dual_write_whose_mysql_half_is_a_deadlock_victim_reaches_dynamodb_once(app, db, dynamo, caplog):
    """Through the routing layer: the retry runs inside the MySQL half, so DynamoDB's half
    runs once, after the transaction that committed, with nothing recorded for repair."""
    from shop.aspects import use_flags
    from shop.domain import NewProduct, NewUser

    routed, dual = app.extensions["shop"].repos, "READ_MYSQL,WRITE_MYSQL,WRITE_DDB"
    with use_flags(dual):
        seller = routed.users.create(NewUser(username=unique("dls"), email=unique() + "@x.com", password_hash="h"))
        category = routed.categories.create(unique("dlc"), None)
        product = routed.products.create(seller.id, NewProduct(category_id=category.id, name="P", price=5,
                                                               inventory_quantity=10))
    pending = app.extensions["shop"].runtime.repair_log.pending_count()
    caplog.set_level(logging.INFO, logger="shop.db")

    def add():
        with use_flags(dual):
            return routed.carts.add_item(seller.id, product.id, 2)
    outcome = _deadlock_a_cart_insert(db, seller.id, product.id, add)
    assert "error" not in outcome, outcome.get("error")
    assert _victims(caplog) == [1] and outcome["mysql"] == ((2,),)
    lines = Repositories.dynamodb(dynamo).carts.list_items(seller.id)
    assert [(ln.product_id, ln.quantity) for ln in lines] == [(product.id, 2)]
    assert app.extensions["shop"].runtime.repair_log.pending_count() == pending


def test_a_transaction_chosen_as_victim_every_time_says_busy_and_try_again(db, client):
    calls = []

    @retry_deadlocks
    def always_a_victim():
        calls.append(1)
        error = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
        raise translate(error) from error

    with pytest.raises(StoreBusyError, match="nothing was saved") as raised:
        always_a_victim()
    assert len(calls) == 3
    assert error_code(raised.value) == 1213
    app = client.application

    @retry_deadlocks
    def not_a_deadlock():
        calls.append(2)
        error = pymysql.err.OperationalError(2003, "Can't connect to MySQL server")
        raise translate(error) from error

    with pytest.raises(StoreUnavailableError) as raised:
        not_a_deadlock()
    assert not isinstance(raised.value, StoreBusyError) and calls.count(2) == 1  # only deadlocks are retried
    with app.test_request_context("/api/cart/items", method="POST"):
        from shop.api import handle_shop_error
        response, status = handle_shop_error(StoreBusyError("busy", store="mysql"))
    assert status == 503 and response.headers["Retry-After"] == "1"
    assert "try again" in response.get_json()["error"]["message"]
    assert "connection failed" not in response.get_json()["error"]["message"]
    with app.test_request_context("/cart/add", method="POST"):
        from shop.web import handle_shop_error as page_error
        body, status, headers = page_error(StoreBusyError("busy", store="mysql"))
    assert status == 503 and headers == {"Retry-After": "1"} and "nothing was changed" in body
