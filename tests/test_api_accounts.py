"""/api/auth, /api/seller and /api/health: shapes, validation, refusals."""
from __future__ import annotations

import re

import pytest

from .conftest import PASSWORD, unique

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
USER_KEYS = {"id", "username", "email", "first_name", "last_name", "is_seller", "created_at", "updated_at"}


def test_health(api):
    r = api.call("GET", "/api/health")
    body = r.get_json()
    assert r.status_code == 200 and body["success"] is True and body["data"]["status"] == "OK"
    assert body["data"]["database"]["connected"] is True and ISO.match(body["timestamp"])


def test_register_shape_and_no_password_hash(api):
    name = unique()
    r = api.call("POST", "/api/auth/register", json={"username": name, "email": f"{name}@Example.com",
                                                      "password": PASSWORD, "first_name": "<b>Ann</b>"})
    body = r.get_json()
    assert r.status_code == 201 and body["success"] is True and body["message"] == "User registered successfully"
    user = body["data"]["user"]
    assert set(user) == USER_KEYS and user["first_name"] == "Ann" and user["email"] == f"{name}@example.com"
    assert ISO.match(user["created_at"]) and body["data"]["token"].count(".") == 2


@pytest.mark.parametrize("body,path", [
    ({"email": "a@b.co", "password": PASSWORD}, "username"),
    ({"username": "ab", "email": "a@b.co", "password": PASSWORD}, "username"),
    ({"username": "bad name!", "email": "a@b.co", "password": PASSWORD}, "username"),
    ({"username": "good_name", "email": "not-an-email", "password": PASSWORD}, "email"),
    ({"username": "good_name", "email": "a@b.co", "password": "short"}, "password"),
    ({"username": "good_name", "email": "a@b.co", "password": "alllowercase1!"}, "password"),
    ({"username": "good_name", "email": "a@b.co", "password": PASSWORD, "first_name": "x" * 51}, "first_name"),
    ({"username": 123, "email": "a@b.co", "password": PASSWORD}, "username"),
])
def test_register_validation(api, body, path):
    r = api.call("POST", "/api/auth/register", json=body)
    err = r.get_json()["error"]
    assert r.status_code == 400 and err["type"] == "ValidationError"
    assert path in {d["path"] for d in err["details"]}


def test_register_duplicates(api):
    user, _ = api.register()
    r = api.call("POST", "/api/auth/register", json={"username": user["username"].upper(),
                                                      "email": unique() + "@example.com", "password": PASSWORD})
    assert r.status_code == 409 and "Username already exists" in r.get_json()["error"]["message"]
    r = api.call("POST", "/api/auth/register", json={"username": unique(), "email": user["email"],
                                                      "password": PASSWORD})
    assert r.status_code == 409 and "Email already exists" in r.get_json()["error"]["message"]


def test_login(api):
    user, _ = api.register()
    r = api.call("POST", "/api/auth/login", json={"username": user["username"], "password": PASSWORD})
    assert r.status_code == 200 and r.get_json()["data"]["user"]["id"] == user["id"]
    assert r.get_json()["message"] == "Login successful"
    for wrong in ({"username": user["username"], "password": "Wrong123!"},
                  {"username": unique(), "password": PASSWORD}):
        r = api.call("POST", "/api/auth/login", json=wrong)
        assert r.status_code == 401 and r.get_json()["error"]["message"] == "Invalid username or password"
    assert api.call("POST", "/api/auth/login", json={"username": user["username"]}).status_code == 400


def test_profile_verify_logout(api):
    user, token = api.register()
    r = api.call("GET", "/api/auth/profile", token)
    assert r.status_code == 200 and r.get_json()["data"]["user"] == user
    r = api.call("GET", "/api/auth/verify", token)
    assert r.get_json()["data"]["valid"] is True and r.get_json()["data"]["user"]["id"] == user["id"]
    assert api.call("POST", "/api/auth/logout", token).get_json()["message"] == "Logged out successfully"


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/auth/profile"), ("PUT", "/api/auth/profile"), ("POST", "/api/auth/upgrade-seller"),
    ("POST", "/api/auth/logout"), ("GET", "/api/auth/verify"), ("POST", "/api/seller/upgrade"),
    ("GET", "/api/seller/profile"), ("GET", "/api/seller/dashboard"), ("PUT", "/api/seller/profile"),
    ("GET", "/api/cart"), ("POST", "/api/cart/items"), ("PUT", "/api/cart/items/1"),
    ("DELETE", "/api/cart/items/1"), ("DELETE", "/api/cart"), ("GET", "/api/cart/summary"),
    ("GET", "/api/cart/validate"), ("POST", "/api/orders/checkout"), ("GET", "/api/orders"),
    ("GET", "/api/orders/1"), ("PUT", "/api/orders/1/cancel"), ("GET", "/api/orders/user/summary"),
    ("PUT", "/api/orders/1/status"), ("GET", "/api/orders/user/recent"), ("GET", "/api/orders/user/search"),
    ("GET", "/api/orders/checkout/validate"), ("POST", "/api/products"), ("PUT", "/api/products/1"),
    ("DELETE", "/api/products/1"), ("GET", "/api/products/seller/my-products"),
    ("PUT", "/api/products/1/inventory"), ("GET", "/api/products/seller/stats"),
    ("POST", "/api/products/upload-image"), ("POST", "/api/categories"), ("PUT", "/api/categories/1"),
    ("DELETE", "/api/categories/1"),
])
def test_protected_endpoints_refuse_missing_and_bad_tokens(api, method, path):
    r = api.call(method, path)
    assert r.status_code == 401 and r.get_json()["error"]["type"] == "AuthenticationError"
    r = api.call(method, path, "not.a.token")
    assert r.status_code == 401 and r.get_json()["error"]["message"] == "Invalid or expired token"


def test_token_signed_with_another_key_is_refused(api, app):
    import jwt
    forged = jwt.encode({"userId": 1}, "another-secret-that-is-long-enough-000", algorithm="HS256")
    assert api.call("GET", "/api/auth/profile", forged).status_code == 401


def test_update_profile(api):
    user, token = api.register()
    r = api.call("PUT", "/api/auth/profile", token, {"first_name": "Mia", "email": unique() + "@ex.org"})
    assert r.status_code == 200 and r.get_json()["data"]["first_name"] == "Mia"
    other, _ = api.register()
    r = api.call("PUT", "/api/auth/profile", token, {"email": other["email"]})
    assert r.status_code == 409
    r = api.call("PUT", "/api/auth/profile", token, {"email": "broken"})
    assert r.status_code == 400


def test_seller_endpoints(api):
    user, token = api.register()
    for path in ("/api/seller/profile", "/api/seller/dashboard"):
        r = api.call("GET", path, token)
        assert r.status_code == 403 and r.get_json()["error"]["type"] == "AuthorizationError"
    assert api.call("PUT", "/api/seller/profile", token, {"first_name": "X"}).status_code == 403
    r = api.call("POST", "/api/seller/upgrade", token)
    assert r.status_code == 200 and r.get_json()["data"]["user"]["is_seller"] is True
    r = api.call("GET", "/api/seller/profile", token)
    assert r.get_json()["data"]["seller"]["id"] == user["id"]
    r = api.call("GET", "/api/seller/dashboard", token)
    assert r.get_json()["data"]["dashboard"]["totalProducts"] == 0
    r = api.call("PUT", "/api/seller/profile", token, {"last_name": "Stone"})
    assert r.status_code == 200 and r.get_json()["data"]["seller"]["last_name"] == "Stone"


def test_upgrade_seller_via_auth(api):
    _, token = api.register()
    r = api.call("POST", "/api/auth/upgrade-seller", token)
    assert r.status_code == 200 and r.get_json()["data"]["is_seller"] is True


def test_deleted_user_token_gives_404_profile(api, db, dynamo):
    from shop.repositories.dynamodb import keys
    from shop.repositories.dynamodb.client import encode
    user, token = api.register()
    # Account deletion is not an API operation: remove the user from both stores directly.
    with db.cursor(write=True) as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (user["id"],))
    dynamo.client.delete_item(TableName=dynamo.table("users"), Key=encode(keys.user(user["id"])))
    r = api.call("GET", "/api/auth/profile", token)
    assert r.status_code == 404 and r.get_json()["error"]["message"] == "User not found"


def test_rate_limit_on_login(settings):
    from dataclasses import replace

    from shop import create_app
    from .conftest import unique
    limited = create_app(replace(settings, rate_limit_enabled=True, rate_limit_auth="2 per minute",
                                 rate_limit_key_prefix=unique("rl")))
    client = limited.test_client()
    codes = [client.post("/api/auth/login", json={"username": "nobody_x", "password": "x"}).status_code
             for _ in range(3)]
    assert codes[:2] == [401, 401] and codes[2] == 429
    r = client.post("/api/auth/login", json={"username": "nobody_x", "password": "x"})
    assert r.get_json()["error"]["type"] == "RATE_LIMIT_ERROR"
    limited.extensions["shop"].db.close()
