"""Login: validated like the reference, equally costly for unknown users, and rate limited
with one budget shared by every worker, the API and the HTML form."""
from __future__ import annotations

from dataclasses import replace

import bcrypt
import pytest

from shop import create_app
from shop.services.auth import AuthService

from .conftest import PASSWORD, unique


@pytest.mark.parametrize("username,message", [
    ("'; DROP TABLE users; --", "Username can only contain letters, numbers, and underscores"),
    ("ab", "Username must be between 3 and 50 characters"),
    ("x" * 51, "Username must be between 3 and 50 characters"),
    ("user name", "Username can only contain letters, numbers, and underscores"),
])
def test_login_validates_the_username_like_the_reference(api, username, message):
    r = api.call("POST", "/api/auth/login", json={"username": username, "password": "whatever"})
    assert r.status_code == 400, r.get_json()
    error = r.get_json()["error"]
    assert error["type"] == "ValidationError" and error["message"].startswith("Validation failed")
    assert message in [d["msg"] for d in error["details"]]


def test_unknown_and_known_usernames_cost_the_same_bcrypt(settings, app, monkeypatch):
    """Both paths check one hash of the configured cost (timing cannot tell them apart)."""
    auth = AuthService(app.extensions["shop"].repos.users, replace(settings, bcrypt_rounds=9))
    name = unique()
    auth.register({"username": name, "email": f"{name}@example.com", "password": PASSWORD})
    costs = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, hashed: costs.append(hashed[:7]) or real(pw, hashed))
    for username in (name, unique("nobody")):
        with pytest.raises(Exception):
            auth.login({"username": username, "password": "Wrong123!"})
    assert costs == [b"$2b$09$", b"$2b$09$"]


@pytest.fixture
def limited(settings):
    """Two application instances, like two gunicorn workers, sharing the limiter storage."""
    shared = replace(settings, rate_limit_enabled=True, rate_limit_auth="5 per 15 minutes",
                     rate_limit_key_prefix=unique("rl"))
    workers = [create_app(shared), create_app(shared)]
    yield [w.test_client() for w in workers]
    for w in workers:
        w.extensions["shop"].db.close()


def test_the_auth_limit_holds_across_workers(limited):
    first, second = limited
    codes = [c.post("/api/auth/login", json={"username": "nobody_x", "password": "x"}).status_code
             for c in (first, second, first, second, first, second, first)]
    assert codes == [401] * 5 + [429, 429]


def test_the_html_login_form_is_limited_and_shares_the_budget(limited):
    first, second = limited
    for c in (first, second):
        with c.session_transaction() as s:
            s["csrf"] = "t"
    form = {"username": "nobody_x", "password": "x", "csrf_token": "t"}
    codes = [first.post("/login", data=form).status_code for _ in range(3)]
    codes += [second.post("/api/auth/login", json={"username": "nobody_x", "password": "x"}).status_code
              for _ in range(2)]
    r = second.post("/login", data=form)
    assert codes == [303, 303, 303, 401, 401] and r.status_code == 429  # a refused form redirects back
    assert b"Too many attempts" in r.data
    assert first.get("/login").status_code == 200  # reading the form is not an attempt


def _seconds(r) -> int:
    value = r.headers.get("Retry-After")
    assert value is not None and value.isdigit(), (r.status_code, dict(r.headers))
    return int(value)


def test_every_429_says_when_to_try_again(limited, settings):
    """Issue 24: 429 answers carried no Retry-After; API, HTML forms and the general API limit
    now all say how many seconds until the window that refused them frees a request."""
    first, second = limited
    for _ in range(5):
        first.post("/api/auth/login", json={"username": "nobody_x", "password": "x"})
    r = first.post("/api/auth/login", json={"username": "nobody_x", "password": "x"})
    assert r.status_code == 429 and 0 < _seconds(r) <= 15 * 60
    with second.session_transaction() as s:
        s["csrf"] = "t"
    r = second.post("/login", data={"username": "nobody_x", "password": "x", "csrf_token": "t"})
    assert r.status_code == 429 and b"Too many attempts" in r.data and 0 < _seconds(r) <= 15 * 60
    api_limited = create_app(replace(settings, rate_limit_enabled=True, rate_limit_default="2 per hour",
                                     rate_limit_key_prefix=unique("rl")))
    c = api_limited.test_client()
    codes = [c.get("/api/categories").status_code for _ in range(3)]
    r = c.get("/api/categories")
    assert codes == [200, 200, 429] and r.status_code == 429 and 3000 < _seconds(r) <= 3600
    api_limited.extensions["shop"].db.close()
