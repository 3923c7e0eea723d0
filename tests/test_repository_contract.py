"""The repository contract: every method, its results, ordering, errors and edge cases.

Written against the interface, not the store, so the DynamoDB family runs the same suite.
"""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from shop.domain import NewProduct, NewUser, ProductFilters
from shop.errors import (ConflictError, DuplicateError, EmptyCartError, InsufficientInventoryError,
                         InvalidStateError, NotFoundError)

from .conftest import unique


def new_user(**kw):
    name = kw.pop("username", unique())
    return NewUser(username=name, email=kw.pop("email", f"{name}@example.com"),
                   password_hash="$2b$04$" + "x" * 53, **kw)


@pytest.fixture
def world(repos):
    """A seller, a buyer, a root category with a child, and two products."""
    seller = repos.users.set_seller(repos.users.create(new_user()).id, True)
    buyer = repos.users.create(new_user(first_name="Zoë", last_name="Ångström"))
    root = repos.categories.create(unique("Root "), None)
    child = repos.categories.create(unique("Child "), root.id)
    p1 = repos.products.create(seller.id, NewProduct(category_id=root.id, name=unique("Lamp "),
                                                     price=Decimal("19.90"), inventory_quantity=5,
                                                     description="Warm light"))
    p2 = repos.products.create(seller.id, NewProduct(category_id=child.id, name=unique("Desk "),
                                                     price=Decimal("120.00"), inventory_quantity=1))
    return dict(seller=seller, buyer=buyer, root=root, child=child, p1=p1, p2=p2)


# --- users -------------------------------------------------------------------------------

def test_user_create_and_lookups(repos):
    u = repos.users.create(new_user(first_name="Zoë", last_name=None))
    assert u.id > 0 and u.is_seller is False and u.first_name == "Zoë" and u.last_name is None
    assert repos.users.get_by_id(u.id) == u
    assert repos.users.get_by_username(u.username) == u
    assert repos.users.get_by_email(u.email) == u
    assert repos.users.get_by_id(2_000_000_000) is None
    assert repos.users.get_by_username("nobody-" + unique()) is None


@pytest.mark.parametrize("field", ["username", "email"])
def test_user_duplicates_are_refused(repos, field):
    u = repos.users.create(new_user())
    kwargs = {"username": unique(), "email": unique() + "@example.com"}
    kwargs[field] = getattr(u, field).upper()  # uniqueness ignores case
    with pytest.raises(DuplicateError) as err:
        repos.users.create(new_user(**kwargs))
    assert err.value.field == field


def test_user_update_profile_and_seller(repos):
    u = repos.users.create(new_user())
    changed = repos.users.update_profile(u.id, {"first_name": "Ana", "last_name": "", "email": unique() + "@ex.org"})
    assert (changed.first_name, changed.last_name) == ("Ana", "")
    assert repos.users.update_profile(2_000_000_000, {"first_name": "x"}) is None
    other = repos.users.create(new_user())
    with pytest.raises(DuplicateError):
        repos.users.update_profile(other.id, {"email": changed.email})
    assert repos.users.set_seller(u.id, True).is_seller is True
    assert repos.users.set_seller(2_000_000_000, True) is None


# --- categories --------------------------------------------------------------------------

def test_category_tree_queries(repos, world):
    root, child = world["root"], world["child"]
    assert repos.categories.get_by_id(child.id) == child
    assert child.parent_id == root.id and root.parent_id is None
    assert repos.categories.get_path(child.id) == [root, child]
    assert repos.categories.get_path(2_000_000_000) == []
    assert repos.categories.list_children(root.id) == [child]
    assert root in repos.categories.list_roots() and child not in repos.categories.list_roots()
    names = [c.name for c in repos.categories.list_all()]
    assert names == sorted(names)
    assert repos.categories.get_by_name(root.name.upper()) == root


def test_category_update_delete_rules(repos, world):
    root, child = world["root"], world["child"]
    renamed = repos.categories.update(child.id, {"name": "Ünïcode ✓ " + unique()})
    assert renamed.name.startswith("Ünïcode ✓")
    assert repos.categories.update(2_000_000_000, {"name": "x"}) is None
    with pytest.raises(InvalidStateError):
        repos.categories.delete(root.id)  # has a child
    with pytest.raises(ConflictError):
        repos.categories.delete(child.id)  # has a product
    empty = repos.categories.create(unique("Empty "), None)
    assert repos.categories.delete(empty.id) is True
    assert repos.categories.delete(empty.id) is False
    with pytest.raises(NotFoundError):
        repos.categories.create("orphan", 2_000_000_000)


# --- products ----------------------------------------------------------------------------

def test_product_create_get_and_details(repos, world):
    p1 = world["p1"]
    assert p1.price == Decimal("19.90") and p1.inventory_quantity == 5
    assert p1.category_name == world["root"].name and p1.seller_username == world["seller"].username
    assert repos.products.get_by_id(p1.id) == p1
    assert repos.products.get_by_id(2_000_000_000) is None
    with pytest.raises(NotFoundError):
        repos.products.create(world["seller"].id, NewProduct(category_id=2_000_000_000, name="x",
                                                             price=Decimal("1.00"), inventory_quantity=0))


def test_product_listing_filters_and_pages(repos, world):
    seller, root = world["seller"], world["root"]
    extra = [repos.products.create(seller.id, NewProduct(category_id=root.id, name=f"Item {i} " + unique(),
                                                         price=Decimal(f"{i}.50"), inventory_quantity=i))
             for i in range(3)]
    by_seller = repos.products.list_products(ProductFilters(seller_id=seller.id), 1, 2)
    assert by_seller.total == 5 and by_seller.total_pages == 3 and len(by_seller.items) == 2
    everything = [p.id for n in (1, 2, 3)
                  for p in repos.products.list_products(ProductFilters(seller_id=seller.id), n, 2).items]
    assert len(everything) == 5 and len(set(everything)) == 5
    # newest first, ties broken by id
    assert everything == sorted(everything, reverse=True)
    in_cat = repos.products.list_products(ProductFilters(category_id=root.id), 1, 50)
    assert {world["p1"].id, world["p2"].id} <= {p.id for p in in_cat.items}  # includes the child category
    in_stock = repos.products.list_products(ProductFilters(seller_id=seller.id, in_stock_only=True), 1, 50)
    assert extra[0].id not in {p.id for p in in_stock.items}
    priced = repos.products.list_products(ProductFilters(seller_id=seller.id, min_price=Decimal("1.00"),
                                                         max_price=Decimal("19.90")), 1, 50)
    assert {p.id for p in priced.items} == {extra[1].id, extra[2].id, world["p1"].id}
    beyond = repos.products.list_products(ProductFilters(seller_id=seller.id), 9, 2)
    assert beyond.items == [] and beyond.total == 5


def test_product_search_is_literal_and_case_insensitive(repos, world):
    seller, root = world["seller"], world["root"]
    tag = unique("zz")
    odd = repos.products.create(seller.id, NewProduct(category_id=root.id, name=f"100% {tag}_x",
                                                      price=Decimal("1.00"), inventory_quantity=1,
                                                      description="O'Brien; DROP TABLE users;--"))
    assert [p.id for p in repos.products.list_products(ProductFilters(search=tag.upper()), 1, 10).items] == [odd.id]
    assert repos.products.list_products(ProductFilters(search=f"{tag}%"), 1, 10).total == 0
    assert repos.products.list_products(ProductFilters(search=f"% {tag}_"), 1, 10).total == 1
    assert repos.products.list_products(ProductFilters(search="O'Brien; DROP"), 1, 10).total >= 1


def test_product_update_inventory_delete_stats(repos, world):
    p1, seller = world["p1"], world["seller"]
    updated = repos.products.update(p1.id, {"price": Decimal("21.00"), "description": None,
                                            "category_id": world["child"].id})
    assert updated.price == Decimal("21.00") and updated.description is None
    assert updated.category_name == world["child"].name
    assert repos.products.update(2_000_000_000, {"name": "x"}) is None
    with pytest.raises(NotFoundError):
        repos.products.update(p1.id, {"category_id": 2_000_000_000})
    assert repos.products.set_inventory(p1.id, 0).inventory_quantity == 0
    stats = repos.products.seller_stats(seller.id)
    assert (stats.total_products, stats.in_stock_products, stats.out_of_stock_products) == (2, 1, 1)
    assert stats.total_inventory_value == Decimal("120.00")
    assert repos.products.delete(p1.id) is True
    assert repos.products.get_by_id(p1.id) is None
    assert repos.products.delete(p1.id) is False


def test_names_shown_with_products_follow_renames_and_email_changes(repos, world):
    p1, p2, seller, buyer = world["p1"], world["p2"], world["seller"], world["buyer"]
    repos.carts.add_item(buyer.id, p1.id, 1)
    renamed = repos.categories.update(world["root"].id, {"name": unique("Renamed ")})
    email = unique() + "@renamed.org"
    repos.users.update_profile(seller.id, {"email": email})
    shown = repos.products.get_by_id(p1.id)
    assert (shown.category_name, shown.seller_email, shown.seller_username) == (renamed.name, email, seller.username)
    assert repos.products.get_by_id(p2.id).category_name == world["child"].name  # another category: untouched
    listed = repos.products.list_products(ProductFilters(seller_id=seller.id), 1, 10).items
    assert {p.seller_email for p in listed} == {email}
    assert repos.carts.list_items(buyer.id)[0].product.category_name == renamed.name
    assert repos.products.update(p2.id, {"category_id": renamed.id}).category_name == renamed.name
    later = repos.products.create(seller.id, NewProduct(category_id=renamed.id, name=unique("Later "),
                                                        price=Decimal("1.00"), inventory_quantity=1))
    assert (later.category_name, later.seller_email) == (renamed.name, email)
    assert repos.products.get_by_id(later.id) == later


def test_listing_totals_follow_creates_moves_and_deletes(repos, world):
    seller, root, child = world["seller"], world["root"], world["child"]
    total = lambda **f: repos.products.list_products(ProductFilters(**f), 1, 1).total  # noqa: E731
    everything = total()
    assert (total(category_id=root.id), total(category_id=child.id), total(seller_id=seller.id)) == (2, 1, 2)
    p = repos.products.create(seller.id, NewProduct(category_id=child.id, name=unique("Count "),
                                                    price=Decimal("2.00"), inventory_quantity=2))
    assert total() == everything + 1
    assert (total(category_id=root.id), total(category_id=child.id), total(seller_id=seller.id)) == (3, 2, 3)
    repos.products.update(p.id, {"category_id": root.id, "name": unique("Moved ")})
    assert (total(category_id=root.id), total(category_id=child.id), total(seller_id=seller.id)) == (3, 1, 3)
    pages = [repos.products.list_products(ProductFilters(category_id=root.id), n, 1) for n in (1, 2, 3, 4)]
    ids = [i.id for page in pages for i in page.items]
    assert ids == sorted({p.id, world["p1"].id, world["p2"].id}, reverse=True)  # one second: newest id first
    assert [page.total for page in pages] == [3, 3, 3, 3] and pages[3].items == []
    repos.products.delete(p.id)
    assert total() == everything
    assert (total(category_id=root.id), total(category_id=child.id), total(seller_id=seller.id)) == (2, 1, 2)


# --- cart --------------------------------------------------------------------------------

def test_cart_lines(repos, world):
    buyer, p1, p2 = world["buyer"], world["p1"], world["p2"]
    assert repos.carts.list_items(buyer.id) == []
    first = repos.carts.add_item(buyer.id, p1.id, 2)
    again = repos.carts.add_item(buyer.id, p1.id, 1)
    assert again.id == first.id and again.quantity == 3 and again.product.id == p1.id
    repos.carts.add_item(buyer.id, p2.id, 1)
    items = repos.carts.list_items(buyer.id)
    assert [i.product_id for i in items] == [p2.id, p1.id]  # most recently added first
    assert repos.carts.set_quantity(buyer.id, p1.id, 4).quantity == 4
    assert repos.carts.set_quantity(buyer.id, 2_000_000_000, 4) is None
    assert repos.carts.get_item(buyer.id, p1.id).quantity == 4
    assert repos.carts.remove_item(buyer.id, p1.id) is True
    assert repos.carts.remove_item(buyer.id, p1.id) is False
    assert repos.carts.clear(buyer.id) == 1
    assert repos.carts.list_items(buyer.id) == []


# --- orders ------------------------------------------------------------------------------

def test_checkout_is_atomic(repos, world):
    buyer, p1, p2 = world["buyer"], world["p1"], world["p2"]
    with pytest.raises(EmptyCartError):
        repos.orders.checkout(buyer.id)
    repos.carts.add_item(buyer.id, p1.id, 3)
    repos.carts.add_item(buyer.id, p2.id, 2)  # only one desk in stock
    with pytest.raises(InsufficientInventoryError) as err:
        repos.orders.checkout(buyer.id)
    assert "only 1 available" in err.value.issues[0]
    assert repos.products.get_by_id(p1.id).inventory_quantity == 5  # nothing changed
    assert len(repos.carts.list_items(buyer.id)) == 2
    repos.carts.set_quantity(buyer.id, p2.id, 1)
    order = repos.orders.checkout(buyer.id)
    assert order.status == "completed" and order.total_amount == Decimal("179.70")
    assert sorted((i.product_id, i.quantity, i.price_at_time) for i in order.items) == sorted(
        [(p1.id, 3, Decimal("19.90")), (p2.id, 1, Decimal("120.00"))])
    assert repos.products.get_by_id(p1.id).inventory_quantity == 2
    assert repos.products.get_by_id(p2.id).inventory_quantity == 0
    assert repos.carts.list_items(buyer.id) == []
    assert repos.orders.get_by_id(order.id) == order


def test_concurrent_checkouts_never_oversell(repos, world):
    seller, root = world["seller"], world["root"]
    last = repos.products.create(seller.id, NewProduct(category_id=root.id, name=unique("Last "),
                                                       price=Decimal("5.00"), inventory_quantity=3))
    buyers = [repos.users.create(new_user()) for _ in range(6)]
    for b in buyers:
        repos.carts.add_item(b.id, last.id, 1)
    results, barrier = [], threading.Barrier(len(buyers))

    def buy(user_id):
        barrier.wait()
        try:
            results.append(repos.orders.checkout(user_id))
        except InsufficientInventoryError as exc:
            results.append(exc)

    threads = [threading.Thread(target=buy, args=(b.id,)) for b in buyers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    orders = [r for r in results if not isinstance(r, Exception)]
    assert len(results) == 6 and len(orders) == 3
    assert repos.products.get_by_id(last.id).inventory_quantity == 0


def test_order_queries_status_cancel_summary(repos, world):
    buyer, p1 = world["buyer"], world["p1"]
    orders = []
    for _ in range(3):
        repos.carts.add_item(buyer.id, p1.id, 1)
        orders.append(repos.orders.checkout(buyer.id))
    page = repos.orders.list_by_user(buyer.id, 1, 2)
    assert page.total == 3 and [o.id for o in page.items] == [orders[2].id, orders[1].id]
    assert [o.id for o in repos.orders.list_by_user(buyer.id, 2, 2).items] == [orders[0].id]
    assert repos.orders.get_by_id(2_000_000_000) is None
    with pytest.raises(InvalidStateError):
        repos.orders.cancel(orders[0].id)  # completed orders cannot be cancelled
    assert repos.orders.set_status(orders[0].id, "pending").status == "pending"
    assert repos.orders.set_status(2_000_000_000, "pending") is None
    stock = repos.products.get_by_id(p1.id).inventory_quantity
    cancelled = repos.orders.cancel(orders[0].id)
    assert cancelled.status == "cancelled"
    assert repos.products.get_by_id(p1.id).inventory_quantity == stock + 1
    with pytest.raises(NotFoundError):
        repos.orders.cancel(2_000_000_000)
    s = repos.orders.summary_by_user(buyer.id)
    assert (s.total_orders, s.completed_orders, s.cancelled_orders, s.pending_orders) == (3, 2, 1, 0)
    assert s.total_spent == Decimal("59.70")
    with pytest.raises(ConflictError):
        repos.products.delete(p1.id)  # ordered products stay for the order history


def test_edge_values_round_trip(repos, world):
    seller, root, buyer = world["seller"], world["root"], world["buyer"]
    edge = repos.products.create(seller.id, NewProduct(category_id=root.id, name="Ω " + unique(), description="",
                                                       price=Decimal("999999.99"), inventory_quantity=999999,
                                                       image_url=None))
    got = repos.products.get_by_id(edge.id)
    assert got.description == "" and got.price == Decimal("999999.99") and got.inventory_quantity == 999999
    cheap = repos.products.create(seller.id, NewProduct(category_id=root.id, name=unique(), price=Decimal("0.01"),
                                                        inventory_quantity=0))
    assert repos.products.get_by_id(cheap.id).price == Decimal("0.01")
    assert repos.products.set_inventory(edge.id, 0).inventory_quantity == 0
    line = repos.carts.add_item(buyer.id, world["p1"].id, 100)
    assert line.quantity == 100 and repos.carts.set_quantity(buyer.id, world["p1"].id, 1).quantity == 1
    user = repos.users.update_profile(buyer.id, {"first_name": "", "last_name": None})
    assert user.first_name == "" and user.last_name is None


def test_conditional_status_and_cancel_race_return_stock_once(repos, world):
    """A cancel and a forward move race on one pending order: exactly one applies, and the
    stock comes back only if the order ends cancelled (both families, conditional writes)."""
    buyer, p1 = world["buyer"], world["p1"]
    repos.carts.add_item(buyer.id, p1.id, 2)
    order = repos.orders.checkout(buyer.id)
    with pytest.raises(InvalidStateError):
        repos.orders.set_status(order.id, "completed", expected="pending")  # it is completed
    assert repos.orders.set_status(2_000_000_000, "completed", expected="pending") is None
    for _ in range(3):
        repos.orders.set_status(order.id, "pending")
        stock = repos.products.get_by_id(p1.id).inventory_quantity
        results = []
        moves = [lambda: repos.orders.cancel(order.id),
                 lambda: repos.orders.set_status(order.id, "completed", expected="pending"),
                 lambda: repos.orders.cancel(order.id)]

        def run(move):
            try:
                results.append(move().status)
            except InvalidStateError as exc:
                results.append(exc)

        threads = [threading.Thread(target=run, args=(m,)) for m in moves]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        final = repos.orders.get_by_id(order.id).status
        assert len([r for r in results if isinstance(r, str)]) == 1 and final in results
        returned = repos.products.get_by_id(p1.id).inventory_quantity - stock
        assert returned == (2 if final == "cancelled" else 0)
