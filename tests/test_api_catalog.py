"""/api/products and /api/categories."""
from __future__ import annotations


from .conftest import unique

PRODUCT_KEYS = {"id", "seller_id", "category_id", "name", "description", "price", "inventory_quantity",
                "imageUrl", "category", "seller_username", "seller_email", "created_at", "updated_at"}


def test_product_create_shape(api, seller):
    user, token, cat, prod = seller
    assert set(prod) == PRODUCT_KEYS and prod["price"] == 19.9 and prod["seller_id"] == user["id"]
    assert prod["category"] == {"id": cat["id"], "name": cat["name"]}


def test_product_get_and_404(api, seller):
    prod = seller[3]
    r = api.call("GET", f"/api/products/{prod['id']}")
    assert r.status_code == 200 and r.get_json()["data"]["product"] == prod
    r = api.call("GET", "/api/products/999999999")
    assert r.status_code == 404 and r.get_json()["error"]["type"] == "NotFoundError"
    r = api.call("GET", "/api/products/abc")
    assert r.status_code == 400 and r.get_json()["error"]["message"] == "Invalid product ID"


def test_product_list_filters_and_pagination(api, seller):
    user, token, cat, prod = seller
    for i in range(2):
        api.product(token, cat["id"], price=5 + i, inventory_quantity=i)
    r = api.call("GET", f"/api/products?seller_id={user['id']}&limit=2&page=1")
    data = r.get_json()["data"]
    assert data["pagination"] == {"total": 3, "page": 1, "limit": 2, "total_pages": 2}
    assert len(data["products"]) == 2
    r = api.call("GET", f"/api/products?seller_id={user['id']}&in_stock_only=true&max_price=5.5")
    assert r.get_json()["data"]["pagination"]["total"] == 0
    r = api.call("GET", f"/api/products?category_id={cat['id']}&min_price=6.01")
    assert [p["price"] for p in r.get_json()["data"]["products"]] == [19.9]
    for bad in ("page=0", "limit=101", "limit=x", "category_id=-1", "sort=random", "min_price=abc"):
        r = api.call("GET", f"/api/products?{bad}")
        assert r.status_code == 400, bad


def test_product_search_and_category_listing(api, seller):
    user, token, cat, prod = seller
    r = api.call("GET", f"/api/products/search?q={prod['name'].upper()}")
    data = r.get_json()["data"]
    assert r.status_code == 200 and data["search_term"] == prod["name"].upper()
    assert [p["id"] for p in data["products"]] == [prod["id"]]
    assert api.call("GET", "/api/products/search").status_code == 400
    assert api.call("GET", "/api/products/search?q=%20").status_code == 400
    r = api.call("GET", f"/api/products/category/{cat['id']}")
    assert r.get_json()["data"]["category_id"] == cat["id"] and r.get_json()["data"]["pagination"]["total"] == 1
    assert api.call("GET", "/api/products/category/x").status_code == 400


def test_product_create_validation(api, seller):
    user, token, cat, _ = seller
    base = {"name": "Ok", "price": 1, "inventory_quantity": 1, "category_id": cat["id"]}
    cases = [({**base, "name": ""}, "name"), ({**base, "price": 0}, "price"), ({**base, "price": -3}, "price"),
             ({**base, "price": 1000000}, "price"), ({**base, "price": 1.234}, "price"),
             ({**base, "price": "NaN"}, "price"), ({**base, "inventory_quantity": -1}, "inventory_quantity"),
             ({**base, "inventory_quantity": 1.5}, "inventory_quantity"), ({**base, "category_id": "x"}, "category_id"),
             ({**base, "description": "x" * 2001}, "description"), ({**base, "image_url": "javascript:x"}, "image_url")]
    for body, field in cases:
        r = api.call("POST", "/api/products", token, body)
        assert r.status_code == 400, body
        assert field in {d["path"] for d in r.get_json()["error"]["details"]}, body
    r = api.call("POST", "/api/products", token, {**base, "category_id": 999999999})
    assert r.status_code == 400 and r.get_json()["error"]["message"] == "Category not found"


def test_product_requires_seller_and_owner(api, seller):
    owner, token, cat, prod = seller
    _, buyer = api.register()
    assert api.call("POST", "/api/products", buyer, {"name": "x"}).status_code == 403
    _, rival = api.register(seller=True)
    r = api.call("PUT", f"/api/products/{prod['id']}", rival, {"name": "Mine now"})
    assert r.status_code == 403 and r.get_json()["error"]["type"] == "AuthorizationError"
    assert api.call("DELETE", f"/api/products/{prod['id']}", rival).status_code == 403
    assert api.call("PUT", f"/api/products/{prod['id']}/inventory", rival, {"inventory_quantity": 1}).status_code == 403
    assert api.call("GET", f"/api/products/{prod['id']}").get_json()["data"]["product"]["name"] == prod["name"]


def test_product_update_inventory_delete(api, seller):
    user, token, cat, prod = seller
    r = api.call("PUT", f"/api/products/{prod['id']}", token, {"name": "Renamed", "price": "21.50"})
    p = r.get_json()["data"]["product"]
    assert r.status_code == 200 and (p["name"], p["price"]) == ("Renamed", 21.5)
    assert api.call("PUT", f"/api/products/{prod['id']}", token, {}).status_code == 400
    assert api.call("PUT", f"/api/products/{prod['id']}", token, {"price": 0}).status_code == 400
    assert api.call("PUT", "/api/products/999999999", token, {"name": "x"}).status_code == 404
    r = api.call("PUT", f"/api/products/{prod['id']}/inventory", token, {"inventory_quantity": 42})
    assert r.status_code == 200 and r.get_json()["data"]["message"] == "Inventory updated successfully"
    for bad in ({}, {"inventory_quantity": -1}, {"inventory_quantity": 1000000}, {"inventory_quantity": "x"}):
        assert api.call("PUT", f"/api/products/{prod['id']}/inventory", token, bad).status_code == 400
    stats = api.call("GET", "/api/products/seller/stats", token).get_json()["data"]["stats"]
    assert stats == {"total_products": 1, "in_stock_products": 1, "out_of_stock_products": 0,
                     "total_inventory_value": 903.0}
    mine = api.call("GET", "/api/products/seller/my-products", token).get_json()["data"]
    assert [x["id"] for x in mine["products"]] == [prod["id"]]
    assert api.call("DELETE", f"/api/products/{prod['id']}", token).status_code == 200
    assert api.call("GET", f"/api/products/{prod['id']}").status_code == 404
    assert api.call("DELETE", f"/api/products/{prod['id']}", token).status_code == 404


def test_upload_image(api, seller):
    token = seller[1]
    r = api.call("POST", "/api/products/upload-image", token, {"file": "data", "filename": "photo.PNG"})
    assert r.status_code == 200 and r.get_json()["data"]["imageUrl"].endswith("_photo.PNG")
    for bad in ({"file": "x"}, {"file": "x", "filename": "evil.exe"}, {"file": "x", "filename": "../../a.png"}):
        assert api.call("POST", "/api/products/upload-image", token, bad).status_code == 400


def test_category_reads(api, seller):
    user, token, root, _ = seller
    child = api.category(token, parent_id=root["id"])
    tree = api.call("GET", "/api/categories").get_json()["data"]["categories"]
    node = next(n for n in tree if n["id"] == root["id"])
    assert [c["id"] for c in node["children"]] == [child["id"]] and node["children"][0]["children"] == []
    flat = api.call("GET", "/api/categories/flat").get_json()["data"]
    assert flat["count"] == len(flat["categories"]) and child["id"] in {c["id"] for c in flat["categories"]}
    roots = api.call("GET", "/api/categories/roots").get_json()["data"]["categories"]
    assert root["id"] in {c["id"] for c in roots} and child["id"] not in {c["id"] for c in roots}
    kids = api.call("GET", f"/api/categories/{root['id']}/children").get_json()["data"]
    assert kids["parent_id"] == root["id"] and [c["id"] for c in kids["categories"]] == [child["id"]]
    path = api.call("GET", f"/api/categories/{child['id']}/path").get_json()["data"]
    assert [c["id"] for c in path["path"]] == [root["id"], child["id"]] and path["depth"] == 2
    one = api.call("GET", f"/api/categories/{child['id']}").get_json()["data"]["category"]
    assert one == child and one["parent_id"] == root["id"]
    found = api.call("GET", f"/api/categories/search?q={child['name'][4:].lower()}").get_json()["data"]
    assert [c["id"] for c in found["categories"]] == [child["id"]]
    assert api.call("GET", "/api/categories/search").status_code == 400
    for path in ("/api/categories/999999999", "/api/categories/999999999/path",
                 "/api/categories/999999999/children"):
        assert api.call("GET", path).status_code == 404, path
    assert api.call("GET", "/api/categories/x").status_code == 400


def test_category_writes(api, seller):
    user, token, root, _ = seller
    _, buyer = api.register()
    assert api.call("POST", "/api/categories", buyer, {"name": "x"}).status_code == 403
    child = api.category(token, parent_id=root["id"])
    r = api.call("POST", "/api/categories", token, {"name": root["name"].lower()})
    assert r.status_code == 409
    r = api.call("POST", "/api/categories", token, {"name": unique(), "parent_id": child["id"]})
    assert r.status_code == 400 and "two levels" in r.get_json()["error"]["message"]
    assert api.call("POST", "/api/categories", token, {"name": unique(), "parent_id": 999999999}).status_code == 404
    assert api.call("POST", "/api/categories", token, {"name": "x" * 101}).status_code == 400
    r = api.call("PUT", f"/api/categories/{child['id']}", token, {"name": "Renamed " + unique()})
    assert r.status_code == 200 and r.get_json()["data"]["category"]["name"].startswith("Renamed")
    other_root = api.category(token)
    r = api.call("PUT", f"/api/categories/{other_root['id']}", token, {"parent_id": other_root["id"]})
    assert r.status_code == 400 and "circular" in r.get_json()["error"]["message"]
    r = api.call("PUT", f"/api/categories/{root['id']}", token, {"parent_id": other_root["id"]})
    assert r.status_code == 400 and "children" in r.get_json()["error"]["message"]
    assert api.call("PUT", "/api/categories/999999999", token, {"name": "x"}).status_code == 404
    r = api.call("DELETE", f"/api/categories/{root['id']}", token)
    assert r.status_code == 400 and "child categories" in r.get_json()["error"]["message"]
    assert api.call("DELETE", f"/api/categories/{child['id']}", token).status_code == 200
    assert api.call("DELETE", f"/api/categories/{child['id']}", token).status_code == 404
    r = api.call("DELETE", f"/api/categories/{root['id']}", token)
    assert r.status_code == 409  # still has the fixture's product
