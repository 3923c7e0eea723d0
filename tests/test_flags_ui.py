"""The flag page: forms, refusals, the signed cookie, the lock, the kill switch, health."""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from shop import Repositories, create_app
from shop.aspects import PRESETS
from shop.flags_ui.cookie import NAME

from .conftest import Api, unique

ROOT = Path(__file__).resolve().parent.parent
# style.css as it was before the flag page existed (commit f104851); the page adds no CSS.
STYLE_SHA256 = "c59893ba9a86e2c38c180e005cc6d90d8ccf7d1de2dc3ce08ee1081609fa4ff8"


def csrf(client, path="/flags"):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def cookie_of(response):
    return next((h for h in response.headers.getlist("Set-Cookie") if h.startswith(NAME + "=")), None)


def health(client):
    return client.get("/flags/health.json").get_json()


def landed(client, response):
    """Post/redirect/get: the form answers 303 to the page; the page shows the outcome."""
    assert response.status_code == 303 and response.headers["Location"].startswith("/flags"), response.status_code
    return client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.fixture
def page(client):
    return client, csrf(client)


def test_page_is_a_complete_unstyled_document_in_the_menu(client):
    html = client.get("/flags").get_data(as_text=True)
    assert html.startswith("<!doctype html>") and '<html lang="en">' in html and '<meta charset="utf-8">' in html
    assert 'name="viewport"' in html and "<title>Feature flags · shop</title>" in html
    assert "<style" not in html and " style=" not in html
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) == ["/static/style.css"]
    assert '<a href="/flags">Feature flags</a>' in client.get("/").get_data(as_text=True)
    for label in re.findall(r'<label for="([^"]+)"', html):
        assert f'id="{label}"' in html  # every label points at a field


def test_stylesheet_is_unchanged():
    assert hashlib.sha256((ROOT / "shop/static/style.css").read_bytes()).hexdigest() == STYLE_SHA256
    assert [p.name for p in (ROOT / "shop/static").iterdir()] == ["style.css"]


def test_default_flags_and_source(client):
    h = health(client)
    assert h["source"] == "server phase" and h["circuit_breaker"] == "closed"
    assert h["phase"]["source"] == "SHOP_FLAGS" and h["phase"]["flags"] == h["server_default"]


def test_one_flag_then_all_four_then_presets_then_reset(page, app):
    client, token = page
    server = app.extensions["shop"].runtime.server_flags()
    r = client.post("/flags/flag", data={"csrf_token": token, "READ_DDB": "on", "confirm_risk": "yes"})
    set_cookie = cookie_of(r)
    assert set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Max-Age=28800" in set_cookie and "Secure" not in set_cookie
    assert "Flags set:" in landed(client, r)
    h = health(client)
    assert h["source"] == "cookie" and h["flags"]["READ_DDB"] is True
    assert (h["flags"]["WRITE_MYSQL"], h["flags"]["WRITE_DDB"]) == (server.write_mysql, server.write_ddb)
    r = client.post("/flags", data={"csrf_token": token, "READ_MYSQL": "on", "READ_DDB": "on",
                                    "WRITE_MYSQL": "on", "WRITE_DDB": "on", "confirm_risk": "yes"})
    landed(client, r)
    assert health(client)["flags"]["READ_MYSQL"] and health(client)["flags"]["READ_DDB"]
    for p in PRESETS:
        r = client.post(f"/flags/preset/{p.key}", data={"csrf_token": token, "confirm_risk": "yes"})
        html = landed(client, r)
        h = health(client)
        assert f"Flags set: {p.flags}" in html
        # The cookie chose the reads; the writes are the server's, whatever the preset says.
        assert (h["flags"]["READ_MYSQL"], h["flags"]["READ_DDB"]) == (p.flags.read_mysql, p.flags.read_ddb)
        assert (h["flags"]["WRITE_MYSQL"], h["flags"]["WRITE_DDB"]) == (server.write_mysql, server.write_ddb)
    r = client.post("/flags/reset", data={"csrf_token": token})
    assert "Max-Age=0" in cookie_of(r) or "expires=Thu, 01 Jan 1970" in cookie_of(r)
    landed(client, r)
    assert health(client)["source"] == "server phase"


def test_form_addresses_opened_directly_land_on_the_page(client):
    for path in ("/flags/flag", "/flags/preset/dual-write", "/flags/reset", "/flags/phase"):
        r = client.get(path)
        assert r.status_code == 303 and r.headers["Location"] == "/flags", path


def test_secure_cookie_over_https(client):
    token = csrf(client)
    r = client.post("/flags/preset/dual-write", data={"csrf_token": token}, base_url="https://localhost")
    assert "Secure" in cookie_of(r)


@pytest.mark.parametrize("form,path", [
    ({}, "/flags"),
    ({"READ_MYSQL": "off"}, "/flags/flag"),
    ({"WRITE_MYSQL": "off"}, "/flags/flag"),
    ({"READ_MYSQL": "maybe"}, "/flags/flag"),
    ({"READ_MYSQL": "on", "READ_DDB": "on"}, "/flags/flag"),
])
def test_impossible_changes_are_refused_and_change_nothing(page, form, path):
    client, token = page
    r = client.post(path, data={"csrf_token": token, **form})
    assert cookie_of(r) is None and "Nothing changed" in landed(client, r)
    assert health(client)["source"] == "server phase"
    r = client.post("/flags/preset/nope", data={"csrf_token": token})
    assert cookie_of(r) is None and "No preset" in landed(client, r)


def test_risky_mix_needs_confirmation(page):
    client, token = page
    risky = {"csrf_token": token, "READ_DDB": "on", "WRITE_MYSQL": "on"}  # reads a store phase 1 does not write
    r = client.post("/flags", data=risky)
    html = landed(client, r)
    assert cookie_of(r) is None and "DynamoDB, which is not written" in html
    assert "Yes, I understand the risk" in html
    r = client.post("/flags", data={**risky, "confirm_risk": "yes"})
    landed(client, r)
    assert health(client)["scenario"] == "custom" and health(client)["risks"]


def test_csrf_is_required(client):
    r = client.post("/flags/preset/ddb-only", data={})
    assert r.status_code == 400 and cookie_of(r) is None


def _cookie(secret, names, signer=TimestampSigner):
    return URLSafeTimedSerializer(secret, salt="shop-flags", signer=signer).dumps(names)


class OldSigner(TimestampSigner):
    def get_timestamp(self):
        return int(time.time()) - 10 * 24 * 3600


@pytest.mark.parametrize("value,reason", [
    ("garbage", "bad signature"), ("a" * 5000, "oversized"), ("", "bad signature"),
    (None, "expired"), ("forged", "bad signature"), ("impossible", "impossible flags"), ("shape", "malformed"),
])
def test_bad_cookies_fall_back_to_the_default_with_a_warning(app, client, caplog, value, reason):
    secret = app.extensions["shop"].settings.secret_key
    value = {None: _cookie(secret, ["READ_DDB", "WRITE_DDB"], OldSigner),
             "forged": _cookie("not-the-secret-key-but-long-enough-1234", ["READ_DDB", "WRITE_DDB"]),
             "impossible": _cookie(secret, ["READ_MYSQL"]), "shape": _cookie(secret, {"x": 1})}.get(value, value)
    client.set_cookie(NAME, value)
    with caplog.at_level(logging.WARNING, "shop.flags"):
        h = health(client)
        assert client.get("/api/products?limit=1").status_code == 200
    assert h["source"] == "server phase"
    assert any(getattr(r, "reason", None) == reason for r in caplog.records)


@hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=';,"\\'),
                     max_size=600))
def test_any_cookie_value_is_never_a_5xx(client, value):
    client.set_cookie(NAME, value)
    for path in ("/flags/health.json", "/api/categories", "/"):
        r = client.get(path)
        assert r.status_code < 500, (path, value)
    assert health(client)["source"] == "server phase"


def test_the_cookie_routes_every_read_and_no_write(client, db, dynamo):
    """A cookie chooses where this browser reads; writes always follow the server's phase, so a
    visitor can never write DynamoDB alone (ids that MySQL also hands out)."""
    from shop.domain import NewUser
    import bcrypt
    only_ddb = Repositories.dynamodb(dynamo).users.create(NewUser(
        username=unique(), email=unique() + "@x.com", password_hash=bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode()))
    token = csrf(client)
    client.post("/flags/preset/ddb-only", data={"csrf_token": token, "confirm_risk": "yes"})
    api = Api(client)
    user, bearer = api.register()  # written where the server writes: MySQL in phase 1
    with db.cursor() as cur:
        cur.execute("SELECT id FROM users WHERE username = %s", (user["username"],))
        assert cur.fetchone()["id"] == user["id"]
    assert Repositories.dynamodb(dynamo).users.get_by_username(only_ddb.username).id == only_ddb.id
    found = api.call("POST", "/api/auth/login", json={"username": only_ddb.username, "password": "x"})
    assert found.status_code == 401  # read from DynamoDB: the account exists there, the password is wrong


def test_health_and_trace_link(client):
    token = csrf(client)
    client.post("/flags/preset/dual-read", data={"csrf_token": token, "confirm_risk": "yes"})
    Api(client).register()
    h = health(client)
    assert set(h["stores"]) == {"mysql", "dynamodb"} and h["stores"]["dynamodb"]["read"]["calls"] >= 1
    assert h["stores"]["mysql"]["write"]["calls"] >= 1
    assert sum(h["trial_comparisons"].values()) >= 1 and isinstance(h["repairs_pending"], int)  # this browser's trial
    assert re.fullmatch(r"[0-9a-f]{32}", h["last_trace"]["trace_id"])
    assert h["last_trace"]["path"] == "/api/auth/register" and h["last_trace"]["status"] == 201
    html = client.get("/flags").get_data(as_text=True)
    assert 'id="trace-link"' not in html and "16686" not in html  # no JAEGER_UI_URL: no Jaeger to link to


def test_the_trace_link_appears_where_a_jaeger_is_configured(settings, app):
    linked = create_app(replace(settings, jaeger_ui_url="http://jaeger.example:16686/"))
    c = linked.test_client()
    assert traced(c, "/", "f" * 32).status_code == 200
    assert 'id="trace-link" href="http://jaeger.example:16686/trace/' + "f" * 32 + '"' in c.get("/flags").get_data(
        as_text=True)
    linked.extensions["shop"].runtime.close()


def traced(client, path, trace_id, sampled=True):
    """A request continuing a caller's trace (W3C traceparent), sampled or not."""
    header = f"00-{trace_id}-{'1' * 16}-{'01' if sampled else '00'}"
    return client.get(path, headers={"traceparent": header})


def test_each_browser_links_its_own_last_traced_request(app):
    from shop.flags_ui.last_trace import NAME as TRACE_COOKIE

    ann, bob = app.test_client(), app.test_client()
    assert traced(ann, "/", "a" * 32).status_code == 200
    assert traced(bob, "/login", "b" * 32).status_code == 200
    assert health(ann)["last_trace"] == {"trace_id": "a" * 32, "method": "GET", "path": "/", "status": 200}
    assert health(bob)["last_trace"]["trace_id"] == "b" * 32  # not Ann's, though Ann came later
    assert health(app.test_client())["last_trace"] is None  # a new browser has none
    # No trace recorded (sampled out), the browser's own fetches, the flag page: the link stays.
    traced(ann, "/api/categories", "c" * 32, sampled=False)
    ann.get("/favicon.ico")
    ann.get("/flags")
    ann.get("/static/style.css")
    assert health(ann)["last_trace"]["trace_id"] == "a" * 32
    assert "a" * 16 + "<wbr>" + "a" * 16 in ann.get("/flags").get_data(as_text=True)
    ann.set_cookie(TRACE_COOKIE, "forged.value")
    assert health(ann)["last_trace"] is None


def test_public_json_stays_cacheable_and_a_browsers_json_is_traced(app, seller):
    """A token client's JSON sets no cookie and does not vary by Cookie (a shared cache may keep
    a product listing); a browser that has been on the pages (its session) gets its trace kept."""
    from shop.flags_ui.last_trace import NAME as TRACE_COOKIE

    _, bearer, _, product = seller
    client = app.test_client()
    for path, token in (("/api/products", None), ("/api/categories", None), (f"/api/products/{product['id']}", None),
                        ("/api/products/seller/my-products", bearer)):
        r = traced(client, path, "d" * 32) if token is None else client.get(
            path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "Set-Cookie" not in r.headers, (path, r.headers.get("Set-Cookie"))
        assert "Cookie" not in r.headers.get("Vary", ""), (path, r.headers["Vary"])
    browser = app.test_client()
    csrf(browser, "/login")  # the login form starts a session
    r = traced(browser, "/api/products", "e" * 32)
    assert any(h.startswith(TRACE_COOKIE + "=") for h in r.headers.getlist("Set-Cookie"))
    assert health(browser)["last_trace"]["path"] == "/api/products"


def test_changes_are_logged_and_traced(app, client, caplog):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import observability
    exporter = InMemorySpanExporter()
    observability.add_span_processor(SimpleSpanProcessor(exporter))
    token = csrf(client)
    with caplog.at_level(logging.INFO, "shop.flags"):
        client.post("/flags/preset/dual-write", data={"csrf_token": token})
    record = next(r for r in caplog.records if r.getMessage() == "flags changed")
    assert (record.who, record.requested) == ("developer", "READ_MYSQL,WRITE_MYSQL,WRITE_DDB")
    span = next(s for s in exporter.get_finished_spans() if s.name == "flags.change")
    assert span.attributes["shop.flags.requested"] == "READ_MYSQL,WRITE_MYSQL,WRITE_DDB"
    default = str(app.extensions["shop"].runtime.server_flags())
    (event,) = [e for e in span.events if e.name == "flags changed"]  # Jaeger shows it as the span's log
    assert dict(event.attributes) == {"event": "flags", "who": "developer", "remote_addr": record.remote_addr,
                                      "from": default, "to": default, "requested": "READ_MYSQL,WRITE_MYSQL,WRITE_DDB",
                                      "how": "preset 2"}
    exporter.clear()
    client.post("/flags/reset", data={"csrf_token": token})
    request = next(s for s in exporter.get_finished_spans() if s.name == "POST /flags/reset")
    assert [dict(e.attributes) for e in request.events if e.name == "flags reset"] == [
        {"event": "flags", "to": default, "remote_addr": record.remote_addr}]


def test_the_page_can_be_locked(settings):
    locked = create_app(replace(settings, flags_page_password="Seven-Lanterns-on-a-hill",
                                rate_limit_key_prefix=unique("lock")))
    c = locked.test_client()
    r = c.get("/flags")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    assert c.get("/flags", auth=("operator", "wrong")).status_code == 401
    assert c.post("/flags/preset/ddb-only", data={}).status_code == 401
    assert c.get("/flags", auth=("operator", "Seven-Lanterns-on-a-hill")).status_code == 200
    assert c.get("/").status_code == 200  # only the flag page and /metrics are locked
    assert c.get("/metrics").status_code == 401 and c.get("/metrics", auth=("operator", "wrong")).status_code == 401
    r = c.get("/metrics", auth=("operator", "Seven-Lanterns-on-a-hill"))
    assert r.status_code == 200 and "shop_circuit_breaker_state 0.0" in r.get_data(as_text=True)
    locked.extensions["shop"].runtime.close()


def test_the_kill_switch_pins_the_flags(settings):
    pinned = create_app(replace(settings, shop_flags_pinned=True))
    c = pinned.test_client()
    secret = pinned.extensions["shop"].settings.secret_key
    c.set_cookie(NAME, _cookie(secret, ["READ_DDB", "WRITE_DDB"]))
    h = c.get("/flags/health.json").get_json()
    assert h["pinned"] is True and h["scenario"] == "MySQL only" and h["source"].startswith("pinned")
    token = csrf(c)
    r = c.post("/flags/preset/ddb-only", data={"csrf_token": token})
    assert cookie_of(r) is None and "pins the flags" in landed(c, r)
    pinned.extensions["shop"].runtime.close()


def test_a_browsers_trial_is_kept_apart_from_the_servers_evidence(app, client, seller, db):
    """The server reads MySQL alone; one browser tries dual reads and meets a product DynamoDB
    lacks: counted as that browser's trial, never in the server's mismatch record (the 3 -> 4
    gate's input), comparisons or last mismatch, and never an error."""
    state = app.extensions["shop"]
    assert not state.runtime.server_flags().dual_read
    product = seller[3]  # written in phase 1: MySQL only
    before = health(client)
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM migration_mismatches")
        recorded = cur.fetchone()["n"]
    client.post("/flags/preset/dual-read", data={"csrf_token": csrf(client), "confirm_risk": "yes"})
    assert client.get(f"/api/products/{product['id']}").status_code == 200
    after = health(client)
    assert after["trial_comparisons"].get("mismatch", 0) == before.get("trial_comparisons", {}).get("mismatch", 0) + 1
    assert after["comparisons"] == before["comparisons"] and after["mismatches"] == before["mismatches"]
    assert after["last_mismatch"] == before["last_mismatch"]
    with db.cursor() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM migration_mismatches")
        assert cur.fetchone()["n"] == recorded
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'shop_trial_compare_outcomes_total{operation="ProductRepository.get_by_id",outcome="mismatch"}' in metrics


def test_the_shop_pages_show_trial_flags_with_a_way_back(client):
    from .test_web import register

    name = register(client)  # phase 1: the account is in MySQL only
    assert 'id="trial-notice"' not in client.get("/").get_data(as_text=True)
    client.post("/flags/preset/ddb-only", data={"csrf_token": csrf(client), "confirm_risk": "yes"})
    html = client.get("/cart").get_data(as_text=True)
    assert 'id="trial-notice"' in html and "its reads come from\n        DynamoDB" in html
    assert name in html  # still logged in: who is logged in is read by the server's phase
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    r = client.post("/flags/reset", data={"csrf_token": token, "next": "/cart"})
    assert r.status_code == 303 and r.headers["Location"] == "/cart" and "shop_flags=;" in r.headers["Set-Cookie"]
    html = client.get("/cart").get_data(as_text=True)
    assert 'id="trial-notice"' not in html and "trial flags are forgotten" in html
    assert client.post("/flags/reset", data={"csrf_token": token, "next": "//evil.example"}).headers[
        "Location"] == "/flags"  # same-site targets only


def test_the_page_lists_the_spans_of_this_browsers_last_trace_without_jaeger(app, seller):
    c = app.test_client()
    assert traced(c, f"/products/{seller[3]['id']}", "9" * 32).status_code == 200
    html = c.get("/flags").get_data(as_text=True)
    spans = re.search(r'<ul id="trace-spans">(.*?)</ul>', html, re.S).group(1)
    assert "<code>GET /products/&lt;int:product_id&gt;</code>" in spans or "GET /products/" in spans
    assert "↳ <code>ProductRepository.<wbr>get_by_id</code>" in spans and " ms" in spans
    h = health(c)
    assert h["last_trace_spans"][0]["depth"] == 0 and h["last_trace_spans"][0]["trace_id"] == "9" * 32
    assert {s["name"] for s in h["last_trace_spans"]} >= {"ProductRepository.get_by_id"}
