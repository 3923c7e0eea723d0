"""SECRET_KEY: refused when missing or weak outside development, and rotated without logouts."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import jwt
import pytest
import yaml

from shop import create_app
from shop.config import DEVELOPMENT_SECRET_KEY, ConfigError, Settings

ROOT = Path(__file__).resolve().parent.parent
OLD = "old-key-0123456789-abcdefghijklmnopqrstuvwxyz"
NEW = "new-key-9876543210-ZYXWVUTSRQPONMLKJIHGFEDCBA"


@pytest.mark.parametrize("env,message", [
    ({}, "SECRET_KEY is not set"),
    ({"SECRET_KEY": DEVELOPMENT_SECRET_KEY}, "SECRET_KEY is a published example value"),
    ({"SECRET_KEY": "change-me-to-a-long-random-string-please"}, "published example value"),
    ({"SECRET_KEY": "a" * 40}, "fewer than 10 different characters"),
    ({"SECRET_KEY": NEW, "SECRET_KEY_FALLBACKS": DEVELOPMENT_SECRET_KEY}, "a key in SECRET_KEY_FALLBACKS"),
    ({"SECRET_KEY": NEW, "SHOP_ENV": "staging"}, "SHOP_ENV must be production or development"),
])
def test_weak_or_missing_key_stops_start_up(monkeypatch, env, message):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SHOP_ENV", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message) as info:
        create_app()
    if "SHOP_ENV" not in env:
        assert "secrets.token_urlsafe" in str(info.value)  # the message says how to fix it


def test_development_accepts_the_published_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SHOP_ENV", "development")
    assert Settings.from_env().secret_key == DEVELOPMENT_SECRET_KEY
    monkeypatch.setenv("SHOP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", NEW)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", f" {OLD} ,")
    assert Settings.from_env().secret_keys == (NEW, OLD)


def test_compose_takes_the_key_from_the_environment():
    env = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["app"]["environment"]
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")


@pytest.fixture
def apps(settings):
    made = []

    def make(key, *fallbacks):
        app = create_app(replace(settings, secret_key=key, secret_key_fallbacks=tuple(fallbacks)))
        made.append(app)
        return app
    yield make
    for app in made:
        app.extensions["shop"].db.close()


def test_rotation_keeps_tokens_and_sessions_valid(apps, api):
    user, _ = api.register()
    before = apps(OLD)
    token = before.extensions["shop"].services.auth.issue_token(user["id"])
    session = before.session_interface.get_signing_serializer(before).dumps({"user_id": user["id"]})

    rotated, dropped = apps(NEW, OLD), apps(NEW)
    r = rotated.test_client().get("/api/auth/profile", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.get_json()["data"]["user"]["id"] == user["id"]
    assert rotated.session_interface.get_signing_serializer(rotated).loads(session) == {"user_id": user["id"]}
    assert dropped.test_client().get("/api/auth/profile",
                                     headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # New tokens are signed with the new key only.
    fresh = rotated.extensions["shop"].services.auth.issue_token(user["id"])
    assert jwt.decode(fresh, NEW, algorithms=["HS256"])["userId"] == user["id"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(fresh, OLD, algorithms=["HS256"])


def test_a_token_forged_with_the_published_key_is_refused(client):
    forged = jwt.encode({"userId": 1}, DEVELOPMENT_SECRET_KEY, algorithm="HS256")
    r = client.get("/api/auth/profile", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


@pytest.mark.parametrize("missing", ["exp", "iat", "userId"])
def test_a_correctly_signed_token_without_its_claims_is_refused(app, api, missing):
    """Issue 24: a token signed with the right key but no `exp` was accepted forever. Every
    token this app issues has `userId`, `iat` and `exp`; one without them did not come from it."""
    import time
    user, _ = api.register()
    now = int(time.time())
    claims = {"userId": user["id"], "iat": now, "exp": now + 3600}
    complete = jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
    assert api.call("GET", "/api/auth/profile", complete).status_code == 200
    del claims[missing]
    token = jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
    r = api.call("GET", "/api/auth/profile", token)
    assert r.status_code == 401 and r.get_json()["error"]["type"] == "AuthenticationError"
