"""Order status as a state machine: who may move an order where, and stock returned once."""
from __future__ import annotations

import pytest

from .test_api_shopping import _buy


@pytest.fixture
def shop(app):
    return app.extensions["shop"]


def _stock(api, product_id):
    return api.call("GET", f"/api/products/{product_id}").get_json()["data"]["product"]["inventory_quantity"]


def _status(api, token, order_id):
    return api.call("GET", f"/api/orders/{order_id}", token).get_json()["data"]["order"]["status"]


def _pending_order(api, shop, token, product_id, quantity=1):
    """An order awaiting fulfilment (as legacy data has them; checkout completes at once)."""
    order = _buy(api, token, product_id, quantity)
    shop.repos.orders.set_status(order["id"], "pending")
    return order["id"]


def test_reopen_then_cancel_cannot_inflate_stock(api, seller):
    """The attack from issue 10: status back to pending, then cancel, repeated."""
    prod = seller[3]
    _, buyer = api.register()
    oid = _buy(api, buyer, prod["id"], 1)["id"]
    stock = _stock(api, prod["id"])
    for _ in range(3):
        r = api.call("PUT", f"/api/orders/{oid}/status", buyer, {"status": "pending"})
        assert r.status_code in (400, 403) and r.get_json()["success"] is False
        r = api.call("PUT", f"/api/orders/{oid}/cancel", buyer)
        assert r.status_code == 400
    assert _stock(api, prod["id"]) == stock and _status(api, buyer, oid) == "completed"


def test_cancelled_order_stays_cancelled_and_stock_returns_once(api, shop, seller):
    _, stoken, _, prod = seller
    _, buyer = api.register()
    oid = _pending_order(api, shop, buyer, prod["id"], 2)
    stock = _stock(api, prod["id"])
    r = api.call("PUT", f"/api/orders/{oid}/status", buyer, {"status": "cancelled"})
    assert r.status_code == 200 and _stock(api, prod["id"]) == stock + 2
    for token, status in ((stoken, "processing"), (stoken, "shipped"), (buyer, "pending"), (buyer, "cancelled")):
        api.call("PUT", f"/api/orders/{oid}/status", token, {"status": status})
        api.call("PUT", f"/api/orders/{oid}/cancel", buyer)
    assert _status(api, buyer, oid) == "cancelled" and _stock(api, prod["id"]) == stock + 2
    r = api.call("PUT", f"/api/orders/{oid}/status", stoken, {"status": "shipped"})
    assert r.status_code == 400 and "can no longer change" in r.get_json()["error"]["message"]


def test_seller_moves_an_order_forward_as_a_reference_client_expects(api, shop, seller):
    _, stoken, _, prod = seller
    _, buyer = api.register()
    oid = _pending_order(api, shop, buyer, prod["id"])
    r = api.call("PUT", f"/api/orders/{oid}/status", stoken, {"status": "processing"})
    assert r.status_code == 200 and _status(api, buyer, oid) == "processing"
    r = api.call("PUT", f"/api/orders/{oid}/status", stoken, {"status": "shipped"})
    assert r.status_code == 200 and r.get_json()["data"]["message"] == "Order status updated successfully"
    assert _status(api, buyer, oid) == "shipped"
    assert api.call("PUT", f"/api/orders/{oid}/status", stoken, {"status": "delivered"}).status_code == 200
    r = api.call("PUT", f"/api/orders/{oid}/status", stoken, {"status": "pending"})
    assert r.status_code == 400 and r.get_json()["error"]["type"] == "InvalidStateError"
    assert api.call("PUT", f"/api/orders/{oid}/cancel", buyer).status_code == 400
    assert _status(api, buyer, oid) == "delivered"


def test_a_paid_order_goes_through_fulfilment_as_in_the_reference_e2e(api, seller):
    """The reference's own e2e flow: checkout (completed, paid), then processing, shipped,
    delivered, each 200; nothing reopens it or returns its stock."""
    _, stoken, _, prod = seller
    _, buyer = api.register()
    oid = _buy(api, buyer, prod["id"], 2)["id"]
    stock = _stock(api, prod["id"])
    for status in ("processing", "shipped", "delivered"):
        r = api.call("PUT", f"/api/orders/{oid}/status", stoken, {"status": status, "tracking_number": "T1"})
        assert r.status_code == 200 and r.get_json()["success"] is True, (status, r.get_json())
        assert _status(api, buyer, oid) == status
    for token, status in ((stoken, "processing"), (stoken, "completed"), (stoken, "pending")):
        r = api.call("PUT", f"/api/orders/{oid}/status", token, {"status": status})
        assert r.status_code == 400 and "cannot go back" in r.get_json()["error"]["message"], status
    assert api.call("PUT", f"/api/orders/{oid}/status", buyer, {"status": "cancelled"}).status_code == 400
    assert api.call("PUT", f"/api/orders/{oid}/cancel", buyer).status_code == 400
    assert _status(api, buyer, oid) == "delivered" and _stock(api, prod["id"]) == stock
    summary = api.call("GET", "/api/orders/user/summary", buyer).get_json()["data"]["summary"]
    assert summary["completedOrders"] == 1 and summary["pendingOrders"] == 0


def test_who_may_change_an_order(api, shop, seller):
    _, stoken, cat, prod = seller
    _, buyer = api.register()
    _, other_seller = api.register(seller=True)
    api.product(other_seller, cat["id"])
    oid = _pending_order(api, shop, buyer, prod["id"])
    stock = _stock(api, prod["id"])
    # The seller cancelling, the buyer shipping: parties to the order, refused what is not theirs.
    for token, status in ((stoken, "cancelled"), (buyer, "shipped")):
        r = api.call("PUT", f"/api/orders/{oid}/status", token, {"status": status})
        assert r.status_code == 403 and r.get_json()["error"]["type"] == "AuthorizationError", (status, r.get_json())
    # A seller whose products are not in the order is a stranger to it: as if it did not exist.
    r = api.call("PUT", f"/api/orders/{oid}/status", other_seller, {"status": "shipped"})
    assert r.status_code == 404 and r.get_json()["error"]["type"] == "NotFoundError"
    assert api.call("PUT", f"/api/orders/{oid}/cancel", stoken).status_code == 403
    assert _status(api, buyer, oid) == "pending" and _stock(api, prod["id"]) == stock
    r = api.call("PUT", f"/api/orders/{oid}/cancel", buyer)
    assert r.status_code == 200 and _stock(api, prod["id"]) == stock + 1


def _answer(r):
    """What a client learns from a refusal: status, and the envelope's type and message."""
    if r.is_json:
        error = r.get_json()["error"]
        return r.status_code, error["type"], error["message"]
    return r.status_code, r.get_data(as_text=True)


def test_another_users_order_answers_exactly_as_a_missing_one(api, shop, seller, app):
    """Issue 24: 403 for someone else's order and 404 for a missing one let a stranger count
    the orders; a stranger now learns nothing a missing id would not tell."""
    from .test_web import csrf, register
    _, buyer = api.register()
    oid = _pending_order(api, shop, buyer, seller[3]["id"])
    missing = oid + 10_000_000
    _, stranger = api.register()
    for method, path, body in (("GET", "/api/orders/{}", None), ("PUT", "/api/orders/{}/cancel", None),
                               ("PUT", "/api/orders/{}/status", {"status": "cancelled"}),
                               ("PUT", "/api/orders/{}/status", {"status": "shipped"}),
                               ("PUT", "/api/orders/{}/status", {"status": "lost"})):
        theirs = api.call(method, path.format(oid), stranger, body)
        none = api.call(method, path.format(missing), stranger, body)
        assert _answer(theirs) == _answer(none) and none.status_code == 404, (method, path, body)
    browser = app.test_client()
    register(browser)
    token = csrf(browser)
    for method, path, data in (("GET", "/orders/{}", None), ("GET", "/orders/{}/cancel", None),
                               ("POST", "/orders/{}/cancel", {"csrf_token": token})):
        # The form posts back to the order's page (post/redirect/get): follow it.
        theirs = browser.open(path.format(oid), method=method, data=data, follow_redirects=True)
        none = browser.open(path.format(missing), method=method, data=data, follow_redirects=True)
        assert theirs.status_code == none.status_code == 404, (method, path)
        assert _answer(theirs) == _answer(none), (method, path)
    assert _status(api, buyer, oid) == "pending"
