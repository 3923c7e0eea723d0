"""DynamoDB requests per API endpoint, counted by a botocore event hook, DynamoDB-only phase.

Every request goes through the Flask test client as the reference frontend sends it; a
`before-call` hook on the app's DynamoDB client counts each request by operation. A second
table counts the fan-out of the writes that rewrite copies (category rename, seller email
change) for categories and sellers with 10 and 100 products, and a product's rename for a
product held by 10 and 100 orders.

    .venv/bin/python bench/requests_per_endpoint.py
"""
from __future__ import annotations

import time
from collections import Counter

from common import make_app

PASSWORD = "Passw0rd!long-enough"


class Counted:
    def __init__(self, client):
        self.seen = Counter()
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model, **kwargs):
        self.seen[model.name] += 1


def main() -> None:
    app = make_app(shop_flags="READ_DDB,WRITE_DDB", shop_flags_pinned=True)
    http = app.test_client()
    counted = Counted(app.extensions["shop"].dynamo.client)
    tag = str(time.time_ns())[-8:]
    rows = []

    def call(label, method, path, token=None, body=None, expect=(200, 201)):
        counted.seen.clear()
        r = http.open(path, method=method, json=body, headers={"Authorization": f"Bearer {token}"} if token else {})
        assert r.status_code in expect, (label, r.status_code, r.get_json())
        if label:
            rows.append((label, dict(counted.seen)))
        return r.get_json()

    def register(name, label=None):
        data = call(label, "POST", "/api/auth/register",
                    body={"username": name, "email": f"{name}@example.com", "password": PASSWORD})["data"]
        return data["user"], data["token"]

    seller, st = register(f"s{tag}", "POST /api/auth/register")
    call("POST /api/auth/login", "POST", "/api/auth/login", body={"username": f"s{tag}", "password": PASSWORD})
    call("POST /api/auth/upgrade-seller", "POST", "/api/auth/upgrade-seller", st)
    call("GET /api/auth/profile", "GET", "/api/auth/profile", st)
    cat = call("POST /api/categories", "POST", "/api/categories", st, {"name": f"Cat {tag}"})["data"]["category"]
    child = call(None, "POST", "/api/categories", st, {"name": f"Sub {tag}", "parent_id": cat["id"]})["data"]["category"]
    products = [call("POST /api/products" if i == 0 else None, "POST", "/api/products", st,
                     {"name": f"Item {i} {tag}", "description": "A fine thing", "price": 9.5,
                      "inventory_quantity": 50, "category_id": (cat if i % 2 else child)["id"]})["data"]["product"]
                for i in range(30)]
    pid = products[0]["id"]
    call("GET /api/products/:id", "GET", f"/api/products/{pid}")
    call("GET /api/products (page 1 of 20)", "GET", "/api/products?page=1&limit=20")
    call("GET /api/products/category/:id (with a child)", "GET", f"/api/products/category/{cat['id']}?limit=20")
    call("GET /api/products/search", "GET", "/api/products/search?q=Item&limit=20")
    call("GET /api/products/seller/my-products", "GET", "/api/products/seller/my-products?limit=20", st)
    call("PUT /api/products/:id", "PUT", f"/api/products/{pid}", st, {"name": f"Renamed {tag}"})
    call("PUT /api/products/:id/inventory", "PUT", f"/api/products/{pid}/inventory", st, {"inventory_quantity": 40})
    call("GET /api/products/seller/stats", "GET", "/api/products/seller/stats", st)
    call("GET /api/categories", "GET", "/api/categories")
    call("GET /api/categories/:id", "GET", f"/api/categories/{cat['id']}")
    buyer, bt = register(f"b{tag}")
    for i, p in enumerate(products[:3]):
        call("POST /api/cart/items" if i == 0 else None, "POST", "/api/cart/items", bt,
             {"productId": p["id"], "quantity": 1})
    call("GET /api/cart (3 lines)", "GET", "/api/cart", bt)
    call("PUT /api/cart/items/:productId", "PUT", f"/api/cart/items/{pid}", bt, {"quantity": 2})
    call("GET /api/orders/checkout/validate", "GET", "/api/orders/checkout/validate", bt)
    order = call("POST /api/orders/checkout (3 lines)", "POST", "/api/orders/checkout", bt,
                 {"paymentMethod": "paypal"})["data"]["order"]
    call("GET /api/orders/:id (3 lines)", "GET", f"/api/orders/{order['id']}", bt)
    call("GET /api/orders", "GET", "/api/orders", bt)
    call("GET /api/orders/user/summary", "GET", "/api/orders/user/summary", bt)
    call("PUT /api/auth/profile (email)", "PUT", "/api/auth/profile", st, {"email": f"new{tag}@example.com"})
    call("PUT /api/categories/:id (rename, 15 products)", "PUT", f"/api/categories/{cat['id']}", st,
         {"name": f"Renamed {tag}"})

    fan_out = []
    for n in (10, 100):
        owner, ot = register(f"f{n}{tag}")
        call(None, "POST", "/api/auth/upgrade-seller", ot)
        c = call(None, "POST", "/api/categories", ot, {"name": f"Fan {n} {tag}"})["data"]["category"]
        for i in range(n):
            call(None, "POST", "/api/products", ot, {"name": f"Fan {i}", "price": 1.5, "inventory_quantity": 1,
                                                     "category_id": c["id"]})
        for label, method, path, body in (
                (f"rename a category of {n} products", "PUT", f"/api/categories/{c['id']}", {"name": f"Fan* {n} {tag}"}),
                (f"change the email of a seller of {n} products", "PUT", "/api/auth/profile",
                 {"email": f"f{n}x{tag}@example.com"})):
            start = time.perf_counter()
            call(None, method, path, ot, body)
            fan_out.append((label, dict(counted.seen), (time.perf_counter() - start) * 1000))
        # What orders show of a product is copied into them: a rename rewrites each order holding it.
        held = call(None, "POST", "/api/products", ot, {"name": f"Held {n}", "price": 1.5, "inventory_quantity": n,
                                                        "category_id": c["id"]})["data"]["product"]
        _, bt2 = register(f"o{n}{tag}")
        for _ in range(n):
            call(None, "POST", "/api/cart/items", bt2, {"productId": held["id"], "quantity": 1})
            call(None, "POST", "/api/orders/checkout", bt2, {"paymentMethod": "paypal"})
        start = time.perf_counter()
        call(None, "PUT", f"/api/products/{held['id']}", ot, {"name": f"Held* {n}"})
        fan_out.append((f"rename a product held by {n} orders", dict(counted.seen),
                        (time.perf_counter() - start) * 1000))

    print("\n## DynamoDB requests per API endpoint (DynamoDB-only phase)")
    print("| Endpoint | Requests | By operation |\n|---|---|---|")
    for label, seen in rows:
        detail = ", ".join(f"{op} {n}" for op, n in sorted(seen.items()))
        print(f"| {label} | {sum(seen.values())} | {detail} |")
    print("\n## Fan-out of the writes that rewrite copies\n| Write | Requests | By operation | ms |\n|---|---|---|---|")
    for label, seen, ms in fan_out:
        detail = ", ".join(f"{op} {n}" for op, n in sorted(seen.items()))
        print(f"| {label} | {sum(seen.values())} | {detail} | {ms:.0f} |")
    app.extensions["shop"].runtime.close()


if __name__ == "__main__":
    main()
