"""The comparator: equivalent values pass, every kind of divergence is named."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from shop.aspects.compare import attribute_names, diff
from shop.aspects.errors import DualReadMismatch
from shop.domain import CartItem, Order, OrderItem, Page, Product, User

T = datetime(2026, 11, 21, 12, 30, 15)


def product(**kw):
    base = dict(id=1, seller_id=2, category_id=3, name="Lamp", description="Warm", price=Decimal("19.90"),
                inventory_quantity=5, image_url=None, created_at=T, updated_at=T, category_name="Home",
                seller_username="ann", seller_email="ann@x.com")
    base.update(kw)
    return Product(**base)


def test_equivalent_values_do_not_differ():
    ddb = product(price=19.9, description="Warm", created_at=T.replace(microsecond=999),
                  updated_at=T.replace(tzinfo=timezone.utc), inventory_quantity=Decimal(5))
    assert diff(product(), ddb) == []
    assert diff(product(description=None), product(description="")) == []
    u1 = User(1, "a", "a@x", "h", None, "", True, T, T)
    assert diff(u1, User(1, "a", "a@x", "h", "", None, 1, T, T)) == []


def test_each_kind_of_divergence_is_named():
    assert [(d.path, d.kind) for d in diff(product(), product(name="Lamp!"))] == [("name", "changed")]
    assert [(d.path, d.kind) for d in diff(product(), product(description=None))] == [("description", "missing")]
    assert [(d.path, d.kind) for d in diff(product(image_url=None), product(image_url="/a.png"))] == [
        ("image_url", "extra")]
    assert [(d.path, d.kind) for d in diff(product(), product(name=5))] == [("name", "type")]
    assert [(d.path, d.kind) for d in diff(product(), None)] == [("", "missing_item")]
    assert [(d.path, d.kind) for d in diff(None, product())] == [("", "extra_item")]
    line = CartItem(1, 1, 1, 2, T, T, product())
    assert [(d.path, d.kind) for d in diff([line], [line, line])] == [("[1]", "extra_item")]
    assert diff(product(), product(updated_at=T + timedelta(seconds=1)))[0].path == "updated_at"
    assert diff(product(), product(price=Decimal("19.91")))[0].path == "price"


def test_lists_without_promised_order_match_as_sets_nested_too():
    items = [OrderItem(1, 9, 5, 1, Decimal("1.00")), OrderItem(2, 9, 6, 2, Decimal("2.50"))]
    a = Order(9, 1, Decimal("6.00"), "completed", T, T, items)
    b = Order(9, 1, Decimal("6"), "completed", T, T, list(reversed(items)))
    assert diff(a, b) != [] and diff(a, b, frozenset({"items"})) == []
    page = lambda o: Page(items=[o], total=1, page=1, limit=20)  # noqa: E731
    assert diff(page(a), page(b), frozenset({"items.items"})) == []
    c = Order(9, 1, Decimal("6.00"), "completed", T, T, items + [OrderItem(3, 9, 7, 1, Decimal("1"))])
    assert attribute_names(diff(a, c, frozenset({"items"}))) == ["items[]"]


def test_mismatch_error_reads_well_and_masks_secrets():
    a = User(1, "ann", "ann@x.com", "$2b$12$secret", None, None, False, T, T)
    b = User(1, "ann", "ann@y.com", "$2b$12$other", None, None, False, T, T)
    err = DualReadMismatch("UserRepository.get_by_id", {"user_id": 1}, diff(a, b))
    text = str(err)
    assert "UserRepository.get_by_id" in text and err.key == {"user_id": 1}
    # What the read was asked (here an id; elsewhere a search a visitor typed) stays out of the text.
    search = DualReadMismatch("ProductRepository.list_products", {"filters": "İstanbul lamp"}, diff(a, b))
    assert "stanbul" not in str(search) and "stanbul" not in str(search.details)
    assert "email: changed; password_hash: changed" in text
    assert "ann@" not in text and "secret" not in text  # where they differ, never the values
    assert err.attributes == ["email", "password_hash"]
    masked = err.differences[1].describe()  # the values, for an operator's own tools, stay masked
    assert "password_hash: changed: MySQL='***' DynamoDB='***'" == masked
    whole = str(DualReadMismatch("UserRepository.get_by_id", {"user_id": 1}, diff(a, None)))
    assert "secret" not in whole and "missing_item" in whole


money = st.decimals(min_value=0, max_value=999999, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(price=money, qty=st.integers(0, 10**6), micro=st.integers(0, 999999), empty=st.sampled_from([None, ""]))
def test_generated_equivalent_pairs_never_differ(price, qty, micro, empty):
    mysql = product(price=price, inventory_quantity=qty, description=empty)
    ddb = product(price=float(price) if price < 10**6 else price, inventory_quantity=Decimal(qty),
                  description=None if empty == "" else "", created_at=T.replace(microsecond=micro))
    assert diff(mysql, ddb) == []


def test_a_record_differing_at_one_version_is_a_divergence_not_a_write_in_flight():
    from dataclasses import replace

    from shop.aspects.compare import same_version_differs
    at = datetime(2026, 1, 1)
    p = Product(id=7, seller_id=1, category_id=2, name="Lamp", description=None, price=Decimal("9.50"),
                inventory_quantity=3, image_url=None, created_at=at, updated_at=at, version=4)
    changed = replace(p, name="Changed behind the app")
    assert same_version_differs(p, changed)                       # same version, other content
    assert not same_version_differs(replace(p, version=5), changed)  # DynamoDB behind: a copy on its way
    assert not same_version_differs(p, replace(p))                # the same
    page = Page(items=[p, replace(p, id=8)], total=2, page=1, limit=20)
    assert same_version_differs(page, Page(items=[p, replace(p, id=8, price=Decimal("1"))], total=2, page=1, limit=20))
