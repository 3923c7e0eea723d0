"""The HTML pages as a person uses them: refusals as a page opens, forms that say what is
wrong, confirmations before destroying anything, post/redirect/get, the test cards."""
from __future__ import annotations

import re

import pytest

from .conftest import unique
from .test_web import csrf, register


@pytest.fixture
def seller_client(client, api):
    """A browser signed in as a seller with a category and a product: (client, token, cat, product)."""
    register(client)
    token = csrf(client)
    client.post("/account/seller", data={"csrf_token": token})
    name = unique("Cat ")
    html = client.post("/categories/manage", data={"csrf_token": token, "name": name},
                       follow_redirects=True).get_data(as_text=True)
    cat_id = int(re.search(r'<option value="(\d+)">' + re.escape(name) + "<", html).group(1))
    r = client.post("/seller/products/new", data={"csrf_token": token, "name": "Teapot", "price": "24.50",
                                                  "inventory_quantity": "3", "category_id": cat_id})
    assert r.status_code == 302
    html = client.get("/seller").get_data(as_text=True)
    pid = int(re.search(r"/seller/products/(\d+)/edit", html).group(1))
    return client, token, cat_id, pid


def test_another_sellers_product_is_refused_when_the_page_opens(seller_client, app):
    client, _, cat_id, pid = seller_client
    other = app.test_client()
    register(other)
    other.post("/account/seller", data={"csrf_token": csrf(other)})
    for path in (f"/seller/products/{pid}/edit", f"/seller/products/{pid}/delete"):
        r = other.get(path)
        assert r.status_code == 403 and "only change your own products" in r.get_data(as_text=True), path
        assert 'name="name"' not in r.get_data(as_text=True)


def test_clearing_the_name_is_an_error_not_saved(seller_client, api):
    client, token, cat_id, pid = seller_client
    r = client.post(f"/seller/products/{pid}/edit", data={"csrf_token": token, "name": "  ", "price": "30",
                                                          "inventory_quantity": "3", "category_id": cat_id})
    assert r.status_code == 303 and r.headers["Location"] == f"/seller/products/{pid}/edit"
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Product name must be a non-empty string" in html and "saved" not in html
    assert 'value="30"' in html  # what was typed is still there to fix
    product = api.call("GET", f"/api/products/{pid}").get_json()["data"]["product"]
    assert product["name"] == "Teapot" and product["price"] == 24.5
    for field, value, message in (("price", "", "Price must be"), ("inventory_quantity", "", "Inventory quantity"),
                                  ("price", "abc", "Price must be")):
        data = {"csrf_token": token, "name": "Teapot", "price": "30", "inventory_quantity": "3",
                "category_id": cat_id, field: value}
        r = client.post(f"/seller/products/{pid}/edit", data=data, follow_redirects=True)
        assert message in r.get_data(as_text=True), field
    r = client.post(f"/categories/{cat_id}/rename", data={"csrf_token": token, "name": ""}, follow_redirects=True)
    assert "Category name is required" in r.get_data(as_text=True)


def test_deleting_asks_first(seller_client, api):
    client, token, cat_id, pid = seller_client
    seller_page = client.get("/seller").get_data(as_text=True)
    assert f'action="/seller/products/{pid}/delete"' not in seller_page  # no one-click delete
    assert f'href="/seller/products/{pid}/delete"' in seller_page
    r = client.get(f"/seller/products/{pid}/delete")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Delete the product “Teapot”?" in html and 'method="post"' in html
    assert api.call("GET", f"/api/products/{pid}").status_code == 200  # asking deleted nothing
    assert f'href="/categories/{cat_id}/delete"' in client.get("/categories/manage").get_data(as_text=True)
    r = client.get(f"/categories/{cat_id}/delete")
    assert r.status_code == 200 and "Delete the category" in r.get_data(as_text=True)
    r = client.post(f"/seller/products/{pid}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Product “Teapot” deleted" in r.get_data(as_text=True)
    assert api.call("GET", f"/api/products/{pid}").status_code == 404


def test_cancelling_an_order_asks_first(client, app, seller):
    prod = seller[3]
    register(client)
    token = csrf(client)
    client.post("/cart/add", data={"csrf_token": token, "product_id": prod["id"], "quantity": "1"})
    r = client.post("/checkout", data={"csrf_token": token, "payment_method": "paypal"})
    oid = int(r.headers["Location"].rsplit("/", 1)[1])
    app.extensions["shop"].repos.orders.set_status(oid, "pending")
    assert f'href="/orders/{oid}/cancel"' in client.get(f"/orders/{oid}").get_data(as_text=True)
    r = client.get(f"/orders/{oid}/cancel")
    assert r.status_code == 200 and f"Cancel order #{oid}?" in r.get_data(as_text=True)
    assert app.extensions["shop"].repos.orders.get_by_id(oid).status == "pending"
    r = client.post(f"/orders/{oid}/cancel", data={"csrf_token": token}, follow_redirects=True)
    assert "Order cancelled" in r.get_data(as_text=True)


def test_failed_forms_redirect_so_a_reload_does_not_post_again(client):
    token = csrf(client, "/login")
    r = client.post("/login?next=/orders", data={"csrf_token": token, "username": "nobody_here", "password": "x"})
    assert r.status_code == 303 and r.headers["Location"] == "/login?next=/orders"
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Invalid username or password" in html and 'value="nobody_here"' in html


def test_checkout_page_names_the_test_cards(client, seller):
    register(client)
    client.post("/cart/add", data={"csrf_token": csrf(client), "product_id": seller[3]["id"], "quantity": "1"})
    html = client.get("/cart").get_data(as_text=True)
    hint = re.search(r'<p class="hint" id="test-cards">(.*?)</p>', html, re.S).group(1)
    assert "4242 4242 4242 4242" in hint and "succeeds" in hint
    for number, outcome in (("4000 0000 0000 0002", "declined"), ("4000 0000 0000 0119", "processing error"),
                            ("4000 0000 0000 0127", "insufficient funds")):
        assert re.search(number + r"</strong> [^;.]*" + outcome, hint), number


def test_a_long_description_is_not_kept_in_the_cookie(seller_client):
    client, token, cat_id, pid = seller_client
    r = client.post(f"/seller/products/{pid}/edit", data={"csrf_token": token, "name": "", "price": "30",
                                                          "inventory_quantity": "3", "category_id": cat_id,
                                                          "description": "😀" * 1000})
    assert len(r.headers["Set-Cookie"]) < 4000
    html = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Please enter the description again" in html and 'value="30"' in html
