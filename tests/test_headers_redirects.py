"""Security headers on every response, the session cookie's attributes, same-site redirects."""
from __future__ import annotations

import pytest

from shop.web.redirects import referrer_path, same_site_path

from .conftest import PASSWORD

PATHS = ["/", "/login", "/api/health", "/api/products", "/api/nowhere", "/nowhere", "/flags", "/static/style.css"]


@pytest.mark.parametrize("path", PATHS)
def test_every_response_carries_the_headers(client, path):
    r = client.get(path)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["X-XSS-Protection"] == "0"  # as the reference's helmet sends it
    assert "Strict-Transport-Security" not in r.headers  # plain HTTP: HSTS would be ignored


FRONTEND = "http://localhost:3000"  # the reference's default CORS_ORIGIN


def preflight(client, path, origin, method="PUT"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": "authorization,content-type"})


def test_cors_preflight_from_the_configured_origin_is_answered(client):
    r = preflight(client, "/api/cart/items/1", FRONTEND)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "PUT", "DELETE", "OPTIONS"}
    assert set(r.headers["Access-Control-Allow-Headers"].lower().split(", ")) == {"authorization", "content-type"}
    r = client.get("/api/products", headers={"Origin": FRONTEND})
    assert r.headers["Access-Control-Allow-Origin"] == FRONTEND and r.get_json()["success"] is True


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:3001", "null"])
def test_cors_from_any_other_origin_gets_no_allow_origin(client, origin):
    for r in (preflight(client, "/api/products", origin), client.get("/api/products", headers={"Origin": origin})):
        assert "Access-Control-Allow-Origin" not in r.headers and "Access-Control-Allow-Credentials" not in r.headers


def test_cors_is_for_the_api_only_and_configured_by_cors_origin(client, settings, monkeypatch):
    from dataclasses import replace

    from shop import create_app
    from shop.config import ConfigError, Settings
    assert "Access-Control-Allow-Origin" not in preflight(client, "/flags/phase", FRONTEND, "POST").headers
    assert "Access-Control-Allow-Origin" not in client.get("/", headers={"Origin": FRONTEND}).headers
    app = create_app(replace(settings, cors_origins=("https://shop.example", "http://127.0.0.1:8080")))
    c = app.test_client()
    assert preflight(c, "/api/products", "https://shop.example").headers["Access-Control-Allow-Origin"] == \
        "https://shop.example"
    assert "Access-Control-Allow-Origin" not in preflight(c, "/api/products", FRONTEND).headers
    app.extensions["shop"].db.close()
    monkeypatch.setenv("CORS_ORIGIN", "https://a.example, http://b.example:3000")
    assert Settings.from_env().cors_origins == ("https://a.example", "http://b.example:3000")
    for bad in ("*", "https://a.example/path", "localhost:3000"):
        monkeypatch.setenv("CORS_ORIGIN", bad)
        with pytest.raises(ConfigError, match="CORS_ORIGIN"):
            Settings.from_env()


def test_https_adds_hsts_and_a_secure_lax_session_cookie(client):
    r = client.get("/login", base_url="https://shop.example")
    assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookie = r.headers["Set-Cookie"]  # the login form's CSRF token starts a session
    assert "SameSite=Lax" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    plain = client.get("/login").headers["Set-Cookie"]
    assert "SameSite=Lax" in plain and "Secure" not in plain


def test_behind_a_trusted_proxy_the_forwarded_scheme_counts(settings):
    from dataclasses import replace

    from shop import create_app
    app = create_app(replace(settings, trusted_proxies=1))
    r = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in r.headers and "Secure" in r.headers["Set-Cookie"]
    app.extensions["shop"].db.close()


@pytest.mark.parametrize("target", ["/%09/evil.example", "/\t/evil.example", "//evil.example", "/\\evil.example",
                                    "https://evil.example/", "/\n/evil.example", "javascript:alert(1)",
                                    "/%0d/evil.example", "\\\\evil.example"])
def test_login_never_redirects_off_site(api, client, target):
    user, _ = api.register()
    with client.session_transaction() as s:
        s["csrf"] = "t"
    from urllib.parse import quote
    r = client.post(f"/login?next={quote(target, safe='%')}",
                    data={"username": user["username"], "password": PASSWORD, "csrf_token": "t"})
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location == "/", (target, location)


def test_login_follows_a_same_site_next(api, client):
    user, _ = api.register()
    with client.session_transaction() as s:
        s["csrf"] = "t"
    r = client.post("/login?next=/orders%3Fpage%3D2",
                    data={"username": user["username"], "password": PASSWORD, "csrf_token": "t"})
    assert r.headers["Location"] == "/orders?page=2"


def test_redirect_helpers():
    assert same_site_path("/cart?x=1") == "/cart?x=1"
    for bad in (None, "", "cart", "//x", "/\t/x", "/\\x", "http://x/", "/x\x00"):
        assert same_site_path(bad) is None
    assert referrer_path("http://shop.test/products/3?a=1", "shop.test") == "/products/3?a=1"
    assert referrer_path("http://evil.example/products/3", "shop.test") is None
    assert referrer_path("http://shop.test//evil.example", "shop.test") is None
