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
    assert "Strict-Transport-Security" not in r.headers  # plain HTTP: HSTS would be ignored


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
