"""/api/cart and /api/orders, including checkout and the simulated payments."""
from __future__ import annotations

import pytest

CARD = {"cardNumber": "4242424242424242", "expiryDate": "12/30", "cvv": "123", "cardholderName": "Ann Buyer"}


@pytest.fixture
def buyer(api, seller):
    _, token = api.register()
    return token


def test_cart_flow(api, seller, buyer):
    prod = seller[3]
    r = api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 2})
    cart = r.get_json()["data"]["cart"]
    assert r.status_code == 201 and cart["summary"] == {"totalItems": 2, "totalAmount": 39.8, "itemCount": 1}
    item = cart["items"][0]
    assert item["productId"] == prod["id"] and item["subtotal"] == 39.8
    assert item["product"]["inventoryQuantity"] == 10 and item["product"]["sellerUsername"] == seller[0]["username"]
    r = api.call("PUT", f"/api/cart/items/{prod['id']}", buyer, {"quantity": 5})
    assert r.get_json()["data"]["cart"]["summary"]["totalItems"] == 5
    assert api.call("GET", "/api/cart", buyer).get_json()["data"]["cart"]["items"][0]["quantity"] == 5
    s = api.call("GET", "/api/cart/summary", buyer).get_json()["data"]["summary"]
    assert s == {"totalItems": 5, "totalAmount": 99.5, "itemCount": 1}
    v = api.call("GET", "/api/cart/validate", buyer).get_json()["data"]
    assert v["validation"] == {"valid": True, "issues": []}
    r = api.call("PUT", f"/api/cart/items/{prod['id']}", buyer, {"quantity": 0})
    assert r.get_json()["data"]["cart"]["items"] == []
    api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 1})
    r = api.call("DELETE", f"/api/cart/items/{prod['id']}", buyer)
    assert r.status_code == 200 and r.get_json()["data"]["cart"]["items"] == []
    assert api.call("DELETE", f"/api/cart/items/{prod['id']}", buyer).status_code == 404
    api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 1})
    assert api.call("DELETE", "/api/cart", buyer).get_json()["data"]["message"] == "Cart cleared successfully"
    assert api.call("GET", "/api/cart", buyer).get_json()["data"]["cart"]["items"] == []


def test_cart_refusals(api, seller, buyer):
    prod = seller[3]
    for body in ({}, {"productId": prod["id"]}, {"productId": prod["id"], "quantity": 0},
                 {"productId": prod["id"], "quantity": -1}, {"productId": prod["id"], "quantity": 101},
                 {"productId": "x", "quantity": 1}, {"productId": prod["id"], "quantity": True}):
        assert api.call("POST", "/api/cart/items", buyer, body).status_code == 400, body
    r = api.call("POST", "/api/cart/items", buyer, {"productId": 999999999, "quantity": 1})
    assert r.status_code == 404
    r = api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 11})
    assert r.status_code == 400 and "Insufficient inventory" in r.get_json()["error"]["message"]
    api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 6})
    r = api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 6})
    assert r.status_code == 400 and "Requested: 12" in r.get_json()["error"]["message"]
    assert api.call("PUT", "/api/cart/items/999999999", buyer, {"quantity": 1}).status_code == 404
    assert api.call("PUT", f"/api/cart/items/{prod['id']}", buyer, {"quantity": 11}).status_code == 400
    assert api.call("PUT", "/api/cart/items/abc", buyer, {"quantity": 1}).status_code == 400
    assert api.call("GET", "/api/cart", buyer).get_json()["data"]["cart"]["items"][0]["quantity"] == 6


def test_checkout_paypal_and_card(api, seller, buyer):
    owner, stoken, cat, prod = seller
    api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 3})
    r = api.call("POST", "/api/orders/checkout", buyer, {"paymentMethod": "paypal"})
    data = r.get_json()["data"]
    assert r.status_code == 201 and data["payment"]["success"] is True
    assert data["payment"]["transactionId"].startswith("PP_")
    order = data["order"]
    assert order["status"] == "completed" and order["totalAmount"] == 59.7
    assert order["items"][0]["priceAtTime"] == 19.9 and order["items"][0]["subtotal"] == 59.7
    assert order["items"][0]["product"]["name"] == prod["name"]
    assert api.call("GET", f"/api/products/{prod['id']}").get_json()["data"]["product"]["inventory_quantity"] == 7
    assert api.call("GET", "/api/cart", buyer).get_json()["data"]["cart"]["items"] == []
    api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 1})
    r = api.call("POST", "/api/orders/checkout", buyer, {"paymentMethod": "credit_card", "paymentDetails": CARD})
    assert r.status_code == 201 and r.get_json()["data"]["payment"]["transactionId"].startswith("CC_")


def test_checkout_refusals_change_nothing(api, seller, buyer):
    prod = seller[3]
    r = api.call("POST", "/api/orders/checkout", buyer, {"paymentMethod": "paypal"})
    assert r.status_code == 400 and r.get_json()["error"]["message"] == "Cart is empty"
    api.call("POST", "/api/cart/items", buyer, {"productId": prod["id"], "quantity": 2})
    for body in ({}, {"paymentMethod": "bitcoin"}, {"paymentMethod": "credit_card"},
                 {"paymentMethod": "credit_card", "paymentDetails": {**CARD, "cvv": "1"}},
                 {"paymentMethod": "debit_card", "paymentDetails": {**CARD, "expiryDate": "13/30"}}):
        assert api.call("POST", "/api/orders/checkout", buyer, body).status_code == 400, body
    r = api.call("POST", "/api/orders/checkout", buyer,
                 {"paymentMethod": "credit_card", "paymentDetails": {**CARD, "cardNumber": "4000000000000002"}})
    assert r.status_code == 402 and "declined" in r.get_json()["error"]["message"]
    api.call("PUT", f"/api/products/{prod['id']}/inventory", seller[1], {"inventory_quantity": 1})
    v = api.call("GET", "/api/orders/checkout/validate", buyer).get_json()["data"]["validation"]
    assert v["eligible"] is False and "only 1 available" in v["issues"][0]
    assert api.call("GET", "/api/cart/validate", buyer).get_json()["data"]["validation"]["valid"] is False
    r = api.call("POST", "/api/orders/checkout", buyer, {"paymentMethod": "paypal"})
    assert r.status_code == 400 and r.get_json()["error"]["message"].startswith("Inventory issues")
    assert api.call("GET", "/api/orders", buyer).get_json()["data"]["pagination"]["total"] == 0
    assert len(api.call("GET", "/api/cart", buyer).get_json()["data"]["cart"]["items"]) == 1


def _buy(api, token, product_id, quantity=1):
    api.call("POST", "/api/cart/items", token, {"productId": product_id, "quantity": quantity})
    r = api.call("POST", "/api/orders/checkout", token, {"paymentMethod": "paypal"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["data"]["order"]


def test_order_reads(api, seller, buyer):
    prod = seller[3]
    orders = [_buy(api, buyer, prod["id"]) for _ in range(3)]
    data = api.call("GET", "/api/orders?limit=2", buyer).get_json()["data"]
    assert data["pagination"] == {"total": 3, "page": 1, "limit": 2, "totalPages": 2}
    assert [o["id"] for o in data["orders"]] == [orders[2]["id"], orders[1]["id"]]
    assert api.call("GET", "/api/orders?page=0", buyer).status_code == 400
    one = api.call("GET", f"/api/orders/{orders[0]['id']}", buyer).get_json()["data"]["order"]
    assert one == orders[0]
    _, stranger = api.register()
    r = api.call("GET", f"/api/orders/{orders[0]['id']}", stranger)
    assert r.status_code == 404  # as a missing order: ids cannot be enumerated
    r = api.call("GET", f"/api/orders/{orders[0]['id']}", seller[1])  # a party to it, not its buyer
    assert r.status_code == 403
    assert api.call("GET", "/api/orders/999999999", buyer).status_code == 404
    recent = api.call("GET", "/api/orders/user/recent?limit=1", buyer).get_json()["data"]["orders"]
    assert [o["id"] for o in recent] == [orders[2]["id"]]
    s = api.call("GET", "/api/orders/user/summary", buyer).get_json()["data"]["summary"]
    assert s == {"totalOrders": 3, "totalSpent": 59.7, "completedOrders": 3, "pendingOrders": 0,
                 "cancelledOrders": 0, "averageOrderValue": 19.9}
    found = api.call("GET", f"/api/orders/user/search?q={prod['name'][-6:]}", buyer).get_json()["data"]
    assert len(found["orders"]) == 3 and found["searchTerm"] == prod["name"][-6:]
    by_id = api.call("GET", f"/api/orders/user/search?q={orders[1]['id']}", buyer).get_json()["data"]["orders"]
    assert orders[1]["id"] in {o["id"] for o in by_id}
    assert api.call("GET", "/api/orders/user/search?q=", buyer).status_code == 400
    assert api.call("GET", "/api/orders/user/search?q=nothing-like-this", buyer).get_json()["data"]["orders"] == []


def test_an_order_shows_its_products_current_names_after_renames(api, seller, buyer):
    """As the reference's join does, in every phase (DynamoDB keeps copies in the order)."""
    user, token, cat, prod = seller
    order = _buy(api, buyer, prod["id"])
    assert api.call("PUT", f"/api/products/{prod['id']}", token,
                    {"name": prod["name"] + " II", "description": "Now warmer"}).status_code == 200
    assert api.call("PUT", f"/api/categories/{cat['id']}", token, {"name": cat["name"] + " renamed"}).status_code == 200
    shown = api.call("GET", f"/api/orders/{order['id']}", buyer).get_json()["data"]["order"]["items"][0]["product"]
    assert shown == {"id": prod["id"], "name": prod["name"] + " II", "description": "Now warmer",
                     "categoryName": cat["name"] + " renamed", "sellerUsername": user["username"]}
    listed = api.call("GET", "/api/orders", buyer).get_json()["data"]["orders"]
    assert [o["items"][0]["product"] for o in listed if o["id"] == order["id"]] == [shown]
    found = api.call("GET", "/api/orders/user/search?q=now warmer", buyer).get_json()["data"]["orders"]
    assert order["id"] in {o["id"] for o in found}


def test_order_status_and_cancel(api, seller, buyer):
    prod = seller[3]
    order = _buy(api, buyer, prod["id"], 2)
    oid = order["id"]
    r = api.call("PUT", f"/api/orders/{oid}/cancel", buyer)
    assert r.status_code == 400 and "Only pending" in r.get_json()["error"]["message"]
    assert api.call("PUT", f"/api/orders/{oid}/status", buyer, {}).status_code == 400
    assert api.call("PUT", f"/api/orders/{oid}/status", buyer, {"status": "lost"}).status_code == 400
    _, stranger = api.register()
    assert api.call("PUT", f"/api/orders/{oid}/status", stranger, {"status": "processing"}).status_code == 404
    assert api.call("PUT", f"/api/orders/{oid}/cancel", stranger).status_code == 404
    # A paid order moves forward by its seller only, and is never reopened.
    assert api.call("PUT", f"/api/orders/{oid}/status", buyer, {"status": "processing"}).status_code == 403
    assert api.call("PUT", f"/api/orders/{oid}/status", seller[1], {"status": "processing"}).status_code == 200
    r = api.call("PUT", f"/api/orders/{oid}/status", seller[1], {"status": "pending"})
    assert r.status_code == 400 and r.get_json()["error"]["type"] == "InvalidStateError"
    assert api.call("GET", f"/api/orders/{oid}", buyer).get_json()["data"]["order"]["status"] == "processing"
    assert api.call("PUT", "/api/orders/999999999/cancel", buyer).status_code == 404
    assert api.call("PUT", "/api/orders/999999999/status", buyer, {"status": "pending"}).status_code == 404