"""Random sequences of repository writes under random runtime phase changes, one dataset per
run, checked after every step against the migration's invariants:

- where the phase writes both stores, an entity a write touched is the same in both (or is
  recorded for replay);
- every acknowledged write is readable from the authoritative store;
- ids never collide, and an id always resolves to the record that was given it.

Phase changes go through the real control (gates, backfill and verify before 3, counters before
5, the copy back out of 5), as an operator would make them.
"""
from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from shop import Repositories, create_app
from shop.domain import NewProduct, NewUser
from shop.errors import ShopError
from shop.aspects import exposure
from shop.migration import jobs
from shop.migration.entities import NAMES
from shop.migration.control import PhaseControl
from shop.migration.state import now, parse
from shop.migration.copies import Copier

from .conftest import TEST_DB, make_settings

APP = {}


def _app():
    if "app" not in APP:
        from shop.prepare import prepare
        app = create_app(make_settings(mysql_database=TEST_DB + "_journey",
                                       dynamodb_table_prefix=f"h{uuid.uuid4().hex[:8]}",
                                       phase_refresh_ms=100, gate_compare_window_s=0, id_gap=100,
                                       gate_min_comparisons=0, guard_enabled=False))
        prepare(app, empty=True)
        APP["app"] = app
    return APP["app"]


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    app = APP.pop("app", None)
    if app is not None:
        from shop.repositories.dynamodb.tables import delete_tables
        state = app.extensions["shop"]
        delete_tables(state.dynamo)
        state.close()
        state.db.close()


def _wipe(app) -> None:
    """A fresh dataset for the next run: every row and item of both stores, and the phase."""
    from shop.prepare import prepare
    prepare(app, empty=True, keep_counters=False)
    app.extensions["shop"].runtime.breaker.success()


class Journey(RuleBasedStateMachine):
    @initialize(phase=st.integers(1, 5))
    def start(self, phase):
        self.app = _app()
        _wipe(self.app)
        self.state = self.app.extensions["shop"]
        self.repos = self.state.repos  # the routed repositories, as the services use them
        self.control = PhaseControl(self.state)
        self.mysql, self.ddb = Repositories.mysql(self.state.db), Repositories.dynamodb(self.state.dynamo)
        self.phase = 1
        self.users: dict[int, tuple[str, str]] = {}           # id -> (username, email)
        self.categories: dict[int, str] = {}
        self.products: dict[int, list] = {}                   # id -> [price, inventory, category]
        self.names: dict[int, str] = {}                       # product id -> name
        self.carts: dict[int, dict[int, int]] = {}            # user -> {product: quantity}
        self.orders: dict[int, int] = {}                      # id -> user
        self.seen_ids = {"user": set(), "category": set(), "product": set(), "order": set()}
        self.touched: list[tuple[str, int]] = []
        self.n = 0
        self.change_phase(phase)  # each run starts somewhere on the journey

    def _name(self, prefix):
        self.n += 1
        return f"{prefix}{uuid.uuid4().hex[:6]}{self.n}"

    def _new_id(self, entity, value):
        assert value not in self.seen_ids[entity], f"{entity} id {value} handed out twice"
        self.seen_ids[entity].add(value)
        self.touched.append((entity, value))

    # --- writes ---------------------------------------------------------------------------

    @rule()
    def create_user(self):
        name = self._name("u")
        user = self.repos.users.create(NewUser(username=name, email=f"{name}@x.example", password_hash="h"))
        self._new_id("user", user.id)
        self.users[user.id] = (name, user.email)
        self.carts[user.id] = {}

    @precondition(lambda self: self.users)
    @rule(data=st.data())
    def change_email(self, data):
        uid = data.draw(st.sampled_from(sorted(self.users)))
        email = self._name("e") + "@y.example"
        assert self.repos.users.update_profile(uid, {"email": email}) is not None
        self.users[uid] = (self.users[uid][0], email)
        self.touched.append(("user", uid))

    @rule()
    def create_category(self):
        cat = self.repos.categories.create(self._name("C"), None)
        self._new_id("category", cat.id)
        self.categories[cat.id] = cat.name

    @precondition(lambda self: self.users and self.categories)
    @rule(data=st.data(), price=st.integers(1, 500), stock=st.integers(0, 20))
    def create_product(self, data, price, stock):
        seller = data.draw(st.sampled_from(sorted(self.users)))
        cat = data.draw(st.sampled_from(sorted(self.categories)))
        p = self.repos.products.create(seller, NewProduct(category_id=cat, name=self._name("P"),
                                                          price=Decimal(price), inventory_quantity=stock))
        self._new_id("product", p.id)
        self.products[p.id] = [Decimal(price), stock, cat]
        self.names[p.id] = p.name

    @precondition(lambda self: self.products)
    @rule(data=st.data(), stock=st.integers(0, 30))
    def set_inventory(self, data, stock):
        pid = data.draw(st.sampled_from(sorted(self.products)))
        assert self.repos.products.set_inventory(pid, stock) is not None
        self.products[pid][1] = stock
        self.touched.append(("product", pid))

    @precondition(lambda self: self.products)
    @rule(data=st.data(), price=st.integers(1, 500))
    def change_price(self, data, price):
        pid = data.draw(st.sampled_from(sorted(self.products)))
        assert self.repos.products.update(pid, {"price": Decimal(price)}) is not None
        self.products[pid][0] = Decimal(price)
        self.touched.append(("product", pid))

    def _touch_orders_of(self, product_ids):
        """Orders show their products' names: DynamoDB's copies must follow a rename."""
        self.touched += [("order", o) for o in self.orders if self._order_products(o) & set(product_ids)]

    @precondition(lambda self: self.products)
    @rule(data=st.data())
    def rename_product(self, data):
        pid = data.draw(st.sampled_from(sorted(self.products)))
        name = self._name("R")
        assert self.repos.products.update(pid, {"name": name, "description": self._name("d")}) is not None
        self.names[pid] = name
        self.touched.append(("product", pid))
        self._touch_orders_of([pid])

    @precondition(lambda self: self.categories)
    @rule(data=st.data())
    def rename_category(self, data):
        cid = data.draw(st.sampled_from(sorted(self.categories)))
        name = self._name("N")
        assert self.repos.categories.update(cid, {"name": name}) is not None
        self.categories[cid] = name
        held = [p for p, (_, _, cat) in self.products.items() if cat == cid]
        self.touched += [("category", cid)] + [("product", p) for p in held]
        self._touch_orders_of(held)

    @precondition(lambda self: self.products)
    @rule(data=st.data())
    def delete_product(self, data):
        pid = data.draw(st.sampled_from(sorted(self.products)))
        ordered = any(pid in self._order_products(o) for o in self.orders)
        try:
            self.repos.products.delete(pid)
        except ShopError:
            assert ordered  # only products with orders are kept
            return
        del self.products[pid]
        for cart in self.carts.values():
            cart.pop(pid, None)
        self.touched.append(("product", pid))

    def _order_products(self, order_id):
        order = (self.mysql if self.phase < 5 else self.ddb).orders.get_by_id(order_id)
        return {i.product_id for i in order.items} if order else set()

    @precondition(lambda self: self.users and self.products)
    @rule(data=st.data(), quantity=st.integers(1, 3))
    def add_to_cart(self, data, quantity):
        uid = data.draw(st.sampled_from(sorted(self.users)))
        pid = data.draw(st.sampled_from(sorted(self.products)))
        self.repos.carts.add_item(uid, pid, quantity)
        self.carts[uid][pid] = self.carts[uid].get(pid, 0) + quantity
        self.touched.append(("cart", uid))

    @precondition(lambda self: any(self.carts.values()))
    @rule(data=st.data(), quantity=st.integers(1, 3))
    def add_again(self, data, quantity):
        """A shopper adding more of what the cart already holds."""
        uid = data.draw(st.sampled_from(sorted(u for u, c in self.carts.items() if c)))
        pid = data.draw(st.sampled_from(sorted(self.carts[uid])))
        self.repos.carts.add_item(uid, pid, quantity)
        self.carts[uid][pid] += quantity
        self.touched.append(("cart", uid))

    @precondition(lambda self: any(self.carts.values()))
    @rule(data=st.data(), quantity=st.integers(1, 5))
    def set_quantity(self, data, quantity):
        uid = data.draw(st.sampled_from(sorted(u for u, c in self.carts.items() if c)))
        pid = data.draw(st.sampled_from(sorted(self.carts[uid])))
        assert self.repos.carts.set_quantity(uid, pid, quantity) is not None
        self.carts[uid][pid] = quantity
        self.touched.append(("cart", uid))

    @precondition(lambda self: any(self.carts.values()))
    @rule(data=st.data())
    def remove_from_cart(self, data):
        uid = data.draw(st.sampled_from(sorted(u for u, c in self.carts.items() if c)))
        pid = data.draw(st.sampled_from(sorted(self.carts[uid])))
        assert self.repos.carts.remove_item(uid, pid)
        del self.carts[uid][pid]
        self.touched.append(("cart", uid))

    @precondition(lambda self: any(self.carts.values()))
    @rule(data=st.data())
    def checkout(self, data):
        uid = data.draw(st.sampled_from(sorted(u for u, c in self.carts.items() if c)))
        cart = self.carts[uid]
        if any(q > self.products[p][1] for p, q in cart.items()):
            with pytest.raises(ShopError):
                self.repos.orders.checkout(uid)
            return
        order = self.repos.orders.checkout(uid)
        self._new_id("order", order.id)
        assert {i.product_id: i.quantity for i in order.items} == cart
        for p, q in cart.items():
            self.products[p][1] -= q
            self.touched.append(("product", p))
        self.orders[order.id] = uid
        self.carts[uid] = {}
        self.touched.append(("cart", uid))

    @precondition(lambda self: self.users and self.products)
    @rule(data=st.data(), adds=st.integers(2, 6), stocks=st.lists(st.integers(0, 30), min_size=2, max_size=6))
    def concurrent_writes(self, data, adds, stocks):
        """Parallel requests on one row: adds to one cart line and stock changes of its product,
        all at once; the stores must still end equal (or the row recorded for repair)."""
        uid = data.draw(st.sampled_from(sorted(self.users)))
        pid = data.draw(st.sampled_from(sorted(self.products)))
        writes = [lambda: self.repos.carts.add_item(uid, pid, 1)] * adds
        writes += [lambda s=s: self.repos.products.set_inventory(pid, s) for s in stocks]
        start = threading.Barrier(len(writes))

        def run(write):
            start.wait(30)
            return write()
        with ThreadPoolExecutor(len(writes)) as pool:
            list(pool.map(run, writes))
        self.carts[uid][pid] = self.carts[uid].get(pid, 0) + adds
        authority = self.ddb if self.phase == 5 else self.mysql
        stock = authority.products.get_by_id(pid).inventory_quantity
        assert stock in stocks  # one of the writes is the last, whole
        self.products[pid][1] = stock
        self.touched += [("cart", uid), ("product", pid)]

    # --- reads, and how far they are exposed (sampling, shadow, the canary) -------------------

    @rule(percent=st.sampled_from([0, 10, 50, 100]), mode=st.sampled_from(["inline", "shadow"]))
    def change_sampling(self, percent, mode):
        result = self.control.expose(list(NAMES), "hypothesis", compare_percent=percent, compare_mode=mode,
                                     reason="random journey")
        assert result.ok, result.message

    @precondition(lambda self: self.phase == 3)
    @rule(percent=st.sampled_from(exposure.RAMP))
    def change_rollout(self, percent):
        # Forced: the evidence gates are tests/test_exposure.py's; here, the data across steps.
        result = self.control.expose(list(NAMES), "hypothesis", rollout=percent, force=True, reason="random journey")
        assert result.ok, result.message

    @precondition(lambda self: self.products)
    @rule(data=st.data(), reader=st.integers(0, 50))
    def read_product(self, data, reader):
        """A shopper's read, from whichever store their place in the canary and the sampling
        give them: it shows every acknowledged write."""
        pid = data.draw(st.sampled_from(sorted(self.products)))
        token = exposure.begin(lambda: f"user:{reader}")
        try:
            product = self.repos.products.get_by_id(pid)
        finally:
            exposure.end(token)
        assert product is not None and product.name == self.names[pid]
        assert (product.price, product.inventory_quantity) == tuple(self.products[pid][:2])

    # --- the server's phase, changed as an operator would ----------------------------------

    @rule(phase=st.integers(1, 5))
    def change_phase(self, phase):
        target = phase
        while self.phase != target:
            step = self.phase + (1 if target > self.phase else -1)
            if step == 3 and self.phase == 2:
                self._backfill_and_verify()
            if step == 5:
                checked = jobs.verify(self.state, control=self.control)
                assert checked.ok, checked.divergent
            result = self.control.set(step, "hypothesis", reason="random journey")
            assert result.ok, result.message
            self.phase = step
            if step in (2, 3, 4):
                self._all_agree_where_expected()

    def _backfill_and_verify(self):
        since = parse(self.control.view.refresh().doc["dual_write_since"])
        deadline = time.monotonic() + 5
        while now() < since + self.control.propagation and time.monotonic() < deadline:
            pass  # the gate wants a backfill that began after every worker dual-writes (0.2 s here)
        report = jobs.backfill(self.state, control=self.control)
        assert not report.failed, report.failed
        checked = jobs.verify(self.state, control=self.control)
        assert checked.ok, checked.divergent

    def _all_agree_where_expected(self):
        """Once backfilled (phases 3 and 4, entered forward or back) every entity agrees."""
        if self.phase in (3, 4):
            report = jobs.verify(self.state)
            assert report.ok, report.divergent

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def dual_written_entities_agree(self):
        if not getattr(self, "touched", None):
            return
        touched, self.touched = self.touched, []
        if self.phase not in (2, 3, 4):
            return
        sync = Copier(self.state.db, self.mysql, self.ddb, self.state.dynamo)
        journal = self.state.runtime.journal
        for entity, entity_id in dict.fromkeys(touched):
            differences = sync.compare(entity, entity_id)
            assert not differences or journal.is_pending(entity, entity_id), (
                f"phase {self.phase}: {entity} {entity_id} differs and nothing records it: "
                + "; ".join(d.describe() for d in differences))

    @invariant()
    def acknowledged_writes_are_in_the_authoritative_store(self):
        if not hasattr(self, "users"):
            return
        authority = self.ddb if self.phase == 5 else self.mysql
        for uid, (name, email) in self.users.items():
            user = authority.users.get_by_id(uid)
            assert user is not None and (user.username, user.email) == (name, email), (uid, user)
        for pid, (price, stock, cat) in self.products.items():
            p = authority.products.get_by_id(pid)
            assert p is not None and (p.price, p.inventory_quantity, p.category_id) == (price, stock, cat), (pid, p)
        for uid, cart in self.carts.items():
            lines = {ln.product_id: ln.quantity for ln in authority.carts.list_items(uid)}
            assert lines == cart, (uid, lines, cart)
        for oid, uid in self.orders.items():
            order = authority.orders.get_by_id(oid)
            assert order is not None and order.user_id == uid, (oid, order)
            for i in order.items:  # what it shows of its products is their current name and category
                shown = (i.product.name, i.product.category_name)
                assert shown == (self.names[i.product_id], self.categories[self.products[i.product_id][2]]), (oid, i)


Journey.TestCase.settings = settings(max_examples=10, stateful_step_count=25, deadline=None,
                                     suppress_health_check=list(HealthCheck))
TestJourney = Journey.TestCase
