"""The HTML storefront, driven as a browser would through forms."""
from __future__ import annotations

import re


from .conftest import PASSWORD, unique


def csrf(client, path="/"):
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def register(client, **extra):
    name = unique()
    token = csrf(client, "/register")
    r = client.post("/register", data={"csrf_token": token, "username": name, "email": f"{name}@example.com",
                                       "password": PASSWORD, **extra}, follow_redirects=True)
    assert r.status_code == 200 and f"Welcome, {name}" in r.get_data(as_text=True)
    return name


def test_pages_are_complete_documents(client):
    for path in ("/", "/login", "/register"):
        html = client.get(path).get_data(as_text=True)
        assert html.startswith("<!doctype html>") and '<html lang="en">' in html
        assert '<meta charset="utf-8">' in html and 'name="viewport"' in html and "<title>" in html


def test_catalogue_search_and_product_page(client, api, seller):
    user, token, cat, prod = seller
    html = client.get(f"/?category_id={cat['id']}").get_data(as_text=True)
    assert prod["name"] in html and cat["name"] in html
    html = client.get(f"/?q={prod['name'][-8:]}").get_data(as_text=True)
    assert prod["name"] in html and "1 product" in html
    html = client.get(f"/products/{prod['id']}").get_data(as_text=True)
    assert "$19.90" in html and "Log in" in html
    assert client.get("/products/999999999").status_code == 404
    assert client.get("/?page=0").status_code == 200  # bad paging falls back, with a message


def test_register_validation_shows_errors(client):
    token = csrf(client, "/register")
    r = client.post("/register", data={"csrf_token": token, "username": "x", "email": "bad", "password": "short"})
    assert r.status_code == 303 and r.headers["Location"] == "/register"
    html = client.get("/register").get_data(as_text=True)
    assert "Please provide a valid email address" in html and "Password must be" in html
    assert 'value="bad"' in html and "short" not in html  # typed values kept, never the password
    assert 'value="bad"' not in client.get("/register").get_data(as_text=True)  # once


def test_shop_end_to_end(client, api, seller):
    prod = seller[3]
    name = register(client)
    token = csrf(client, f"/products/{prod['id']}")
    r = client.post("/cart/add", data={"csrf_token": token, "product_id": prod["id"], "quantity": "2"},
                    follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Added to your cart" in html and prod["name"] in html and "$39.80" in html
    r = client.post("/checkout", data={"csrf_token": token, "payment_method": "credit_card",
                                       "card_number": "4242 4242 4242 4242", "expiry_date": "12/30",
                                       "cvv": "123", "cardholder_name": "Ann"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Thank you! Order #" in html and "completed" in html and "$39.80" in html
    html = client.get("/orders").get_data(as_text=True)
    assert "$39.80" in html
    client.post("/logout", data={"csrf_token": token})
    token = csrf(client, "/login")
    r = client.post("/login", data={"csrf_token": token, "username": name, "password": PASSWORD},
                    follow_redirects=True)
    assert f"Logged in as {name}" in r.get_data(as_text=True)


def test_checkout_problems_are_shown(client, seller):
    prod = seller[3]
    register(client)
    token = csrf(client)
    client.post("/cart/add", data={"csrf_token": token, "product_id": prod["id"], "quantity": "1"})
    r = client.post("/checkout", data={"csrf_token": token, "payment_method": "credit_card"}, follow_redirects=True)
    assert "Valid card number is required" in r.get_data(as_text=True)
    r = client.post("/cart/add", data={"csrf_token": token, "product_id": prod["id"], "quantity": "500"},
                    follow_redirects=True)
    assert "Quantity must be between 1 and 100" in r.get_data(as_text=True)


def test_login_failure_and_guarded_pages(client):
    token = csrf(client, "/login")
    r = client.post("/login", data={"csrf_token": token, "username": "nobody", "password": "x"},
                    follow_redirects=True)
    assert r.request.method == "GET" and "Invalid username or password" in r.get_data(as_text=True)
    r = client.get("/cart")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_csrf_is_required(client):
    r = client.post("/login", data={"username": "a", "password": "b"})
    assert r.status_code == 400 and "did not come from this site" in r.get_data(as_text=True)
    csrf(client, "/login")
    r = client.post("/login", data={"csrf_token": "forged", "username": "a", "password": "b"})
    assert r.status_code == 400


def test_seller_dashboard_flow(client):
    register(client)
    token = csrf(client)
    r = client.post("/account/seller", data={"csrf_token": token}, follow_redirects=True)
    assert "You are now a seller" in r.get_data(as_text=True)
    cat_name = unique("Cat ")
    r = client.post("/categories/manage", data={"csrf_token": token, "name": cat_name}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert f"Category “{cat_name}” created" in html
    cat_id = re.search(r'<option value="(\d+)">' + re.escape(cat_name), html).group(1)
    r = client.post("/seller/products/new", data={"csrf_token": token, "name": "Teapot", "price": "0",
                                                  "inventory_quantity": "3", "category_id": cat_id})
    assert r.status_code == 303
    assert "Price must be" in client.get(r.headers["Location"]).get_data(as_text=True)
    r = client.post("/seller/products/new", data={"csrf_token": token, "name": "Teapot", "price": "24.50",
                                                  "inventory_quantity": "3", "category_id": cat_id,
                                                  "description": "Glazed"}, follow_redirects=True)
    html = r.get_data(as_text=True)
    assert "Product “Teapot” created" in html and "$24.50" in html
    pid = re.search(r'/seller/products/(\d+)/edit', html).group(1)
    r = client.post(f"/seller/products/{pid}/edit", data={"csrf_token": token, "name": "Big Teapot",
                                                          "price": "30", "inventory_quantity": "3",
                                                          "category_id": cat_id}, follow_redirects=True)
    assert "Big Teapot" in r.get_data(as_text=True)
    r = client.post(f"/seller/products/{pid}/inventory", data={"csrf_token": token, "inventory_quantity": "9"},
                    follow_redirects=True)
    assert "Inventory updated" in r.get_data(as_text=True) and 'value="9"' in r.get_data(as_text=True)
    r = client.post(f"/seller/products/{pid}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Product “Big Teapot” deleted" in r.get_data(as_text=True)
    r = client.post(f"/categories/{cat_id}/rename", data={"csrf_token": token, "name": cat_name + " 2"},
                    follow_redirects=True)
    assert "Category renamed" in r.get_data(as_text=True)
    r = client.post(f"/categories/{cat_id}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert f"Category “{cat_name} 2” deleted" in r.get_data(as_text=True)


def test_non_seller_is_sent_away_from_seller_pages(client):
    register(client)
    r = client.get("/seller", follow_redirects=True)
    assert "That page is for sellers" in r.get_data(as_text=True)
