"""A person at a real browser: Debian's Chromium, driven by Playwright, against gunicorn."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from shop import Repositories
from shop.aspects import PRESETS, use_flags
from shop.migration.control import PhaseControl

from .conftest import PASSWORD, TEST_DB, Api, forget_phase, unique, wait_for_port
from .ddb_local import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser
# The workshop's frontend shape: a page on another origin calling the API (CORS_ORIGIN names it).
FRONTEND_PORT = free_port()
FRONTEND = f"http://127.0.0.1:{FRONTEND_PORT}"


@pytest.fixture(scope="module")
def server(settings):
    port = free_port()
    env = {**os.environ, "MYSQL_DATABASE": TEST_DB, "DYNAMODB_TABLE_PREFIX": settings.dynamodb_table_prefix,
           "SECRET_KEY": settings.secret_key, "RATE_LIMIT_ENABLED": "false", "BCRYPT_ROUNDS": "4",
           "OTEL_TRACES_EXPORTER": "none", "SHOP_FLAGS": "READ_MYSQL,WRITE_MYSQL", "LOG_LEVEL": "WARNING",
           "SHOP_ENV": "development", "SHOP_PHASE_REFRESH_MS": "200", "CORS_ORIGIN": FRONTEND}
    proc = subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--threads", "4", "shop:create_app()"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port("127.0.0.1", port, 30), "gunicorn did not start"
        base = f"http://127.0.0.1:{port}"
        assert urllib.request.urlopen(base + "/api/health", timeout=10).status == 200
        yield base
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Chromium is missing: run `make browser`"
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def buy(page, base, product_id) -> int:
    page.goto(f"{base}/products/{product_id}")
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url(f"{base}/cart")
    page.select_option("#payment_method", "paypal")
    page.get_by_role("button", name="Place order").click()
    page.wait_for_url(re.compile(r".*/orders/\d+$"))
    assert "Thank you! Order #" in page.content()
    return int(page.url.rsplit("/", 1)[1])


def switch_server(page, base, phase: int, reason: str) -> None:
    page.goto(base + "/flags")
    page.select_option("#phase-target", str(phase))
    page.fill("#phase-reason", reason)
    page.locator("#phase-submit").click()
    page.wait_for_url(base + "/flags")
    assert page.locator("#server-phase").inner_text() == str(phase), page.content()


def test_switch_phases_from_the_page_and_shop(server, browser, app, client, db, dynamo):
    with use_flags(PRESETS[1].flags):  # a seller's product that both stores hold
        seller, token = Api(client).register(seller=True)
        cat = Api(client).category(token)
        product = Api(client).product(token, cat["id"], inventory_quantity=20)
    mysql, ddb = Repositories.mysql(db), Repositories.dynamodb(dynamo)
    page = browser.new_page()
    try:
        page.goto(server + "/")
        page.get_by_role("link", name="Feature flags").click()
        page.wait_for_url(server + "/flags")
        switch_server(page, server, 2, "browser test: start dual writing")
        assert "Server phase: phase 1 -> 2" in page.locator("main").inner_text()
        assert page.locator("#scenario").inner_text() == "Dual write, read MySQL"
        assert page.locator("#source").inner_text() == "server phase"

        name = unique()
        page.get_by_role("link", name="Register").click()
        page.fill("#username", name)
        page.fill("#email", f"{name}@example.com")
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="Register").click()
        assert f"Welcome, {name}" in page.content()
        first = buy(page, server, product["id"])

        user_mysql, user_ddb = mysql.users.get_by_username(name), ddb.users.get_by_username(name)
        assert user_mysql is not None and user_ddb is not None and user_mysql.id == user_ddb.id
        assert mysql.orders.get_by_id(first) is not None and ddb.orders.get_by_id(first).id == first
        assert ddb.products.get_by_id(product["id"]).inventory_quantity == 19

        # This browser alone tries DynamoDB-only: its reads move, its writes stay the server's.
        page.goto(server + "/flags")
        page.locator("#preset-ddb-only").click()
        page.wait_for_url(server + "/flags")
        assert page.locator("#source").inner_text() == "cookie"
        assert page.locator("#effective-flags").inner_text() == "READ_DDB,WRITE_MYSQL,WRITE_DDB"
        assert name in page.content()  # still logged in: who is logged in is read by the server's phase
        assert page.locator("#trial-notice").is_visible()

        switch_server(page, server, 1, "browser test: back to MySQL only")
        page.get_by_role("button", name="Forget this browser's flags (follow the server: READ_MYSQL,WRITE_MYSQL)").click()
        page.wait_for_url(server + "/flags")
        assert page.locator("#scenario").inner_text() == "MySQL only"
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: the page fits by its markup
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, page.evaluate(
            "Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 390)"
            ".slice(0, 5).map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 60))")
        page.screenshot(path=str(Path(os.environ.get("TMPDIR", "/tmp")) / "shop-flags-page.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        second = buy(page, server, product["id"])
        assert mysql.orders.get_by_id(second) is not None
        assert ddb.orders.get_by_id(second) is None  # MySQL only: DynamoDB never saw it
        assert ddb.products.get_by_id(product["id"]).inventory_quantity == 19
        assert mysql.products.get_by_id(product["id"]).inventory_quantity == 18
    finally:
        page.close()
        forget_phase(app)


def test_the_guides_curl_flow_sets_flags(server, app):
    """The command-line recipes of docs/enable-flags.md, run as written: a browser's trial that
    moves nobody else (an operator following the old recipe from phase 3 would have dropped a
    live server to phase 1), then the server's move, whose answer is printed."""
    guide = (ROOT / "docs" / "enable-flags.md").read_text()
    trial, server_move = guide.split("### From the command line")[1].split("```sh")[1:3]
    trial, server_move = trial.split("```")[0], server_move.split("```")[0]
    assert re.search(r"^base=http://\S+$", trial, re.M), "the recipe sets its base URL on a line of its own"
    trial = re.sub(r"^base=http://\S+$", f"base={server}", trial, flags=re.M)
    before = PhaseControl(app.extensions["shop"]).view.refresh()

    # curl as the recipe calls it, also telling (on stderr) each transfer's final status: a form
    # posted with `-X POST -L` re-sent the redirect as a POST without its form, answered 400.
    shim = Path(tempfile.mkdtemp()) / "curl"
    shim.write_text(f"#!/bin/sh\nexec {shutil.which('curl')} -w '%{{stderr}}status %{{http_code}}\\n' \"$@\"\n")
    shim.chmod(0o755)

    def run(script):
        env = {**os.environ, "PATH": f"{shim.parent}:{os.environ['PATH']}"}
        out = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], capture_output=True, text=True,
                             timeout=60, env=env)
        assert out.returncode == 0, out.stderr
        statuses = [line.split()[1] for line in out.stderr.splitlines() if line.startswith("status ")]
        assert statuses and set(statuses) == {"200"}, statuses
        return out.stdout

    try:
        out = run(trial)
        cookie, back = [json.loads(line) for line in out.splitlines() if line.startswith('{"')
                        and '"success"' not in line][:2]
        assert cookie["source"] == "cookie" and cookie["flags"]["READ_DDB"] and cookie["flags"]["READ_MYSQL"]
        assert back["source"] == "server phase" and not back["flags"]["READ_DDB"]  # the reset really forgot it
        assert '"success":true' in out and not out.startswith("{"), out  # say printed the form's answer
        after = PhaseControl(app.extensions["shop"]).view.refresh()
        assert (after.version, after.label) == (before.version, before.label)  # nobody else moved
        out = run(trial.split("# read DynamoDB too")[0] + server_move)
        assert out.startswith("Server phase: "), out
        moved = [json.loads(line) for line in out.splitlines() if line.startswith('{"')][0]
        assert moved["phase"]["label"] == "2" and moved["source"] == "server phase"
        assert "10%" in out.splitlines()[-1], out  # the exposure form's answer
    finally:
        forget_phase(app)


REPORT_CSP = """document.addEventListener('securitypolicyviolation',
    e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"""


def test_headers_and_no_csp_violations_on_every_page(server, browser, client):
    with use_flags(PRESETS[1].flags):
        _, token = Api(client).register(seller=True)
        cat = Api(client).category(token)
        product = Api(client).product(token, cat["id"])
    page = browser.new_page()
    page.add_init_script(REPORT_CSP)
    console = []
    page.on("console", lambda m: console.append(m.text))
    violations = lambda: [t for t in console if "Content Security Policy" in t or "CSP violation" in t]  # noqa: E731

    def visit(path):
        r = page.goto(server + path)
        assert r.status == 200, (path, r.status)
        h = r.headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert h["referrer-policy"] == "same-origin", path

    name = unique()
    visit("/register")
    page.fill("#username", name)
    page.fill("#email", f"{name}@example.com")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Register").click()
    for path in ("/", f"/products/{product['id']}", "/cart", "/flags", "/orders", "/login"):
        visit(path)
    buy(page, server, product["id"])
    visit("/cart")
    page.get_by_role("button", name="Become a seller").click()
    for path in ("/seller", "/seller/products/new", "/categories/manage", "/api/health"):
        visit(path)
    assert violations() == [], violations()
    # The listener does hear violations: an inline script is refused and reported.
    with page.expect_console_message(lambda m: "CSP violation" in m.text, timeout=10_000):
        page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
                      " document.body.appendChild(s); }")
    assert page.evaluate("() => window.x") is None
    page.close()


FRONTEND_JS = """
// As the workshop's React frontend does (axios, baseURL on another port, a bearer token).
async function call(api, method, path, token, body) {
  const headers = {"Content-Type": "application/json"};
  if (token) headers.Authorization = "Bearer " + token;
  const r = await fetch(api + path, {method, headers, credentials: "include",
                                      body: body ? JSON.stringify(body) : undefined});
  return {status: r.status, body: await r.json()};
}
window.shop = async (api, username, password, productId) => {
  const out = {};
  out.register = await call(api, "POST", "/api/auth/register", null,
                            {username, email: username + "@example.com", password});
  out.login = await call(api, "POST", "/api/auth/login", null, {username, password});
  const token = out.login.body.data.token;
  out.products = await call(api, "GET", "/api/products?limit=100");
  out.add = await call(api, "POST", "/api/cart/items", token, {productId, quantity: 2});
  out.cart = await call(api, "GET", "/api/cart", token);
  return out;
};
window.refused = async (api) => {
  try { await fetch(api + "/api/cart", {headers: {Authorization: "Bearer x"}}); return "answered"; }
  catch (e) { return "refused: " + e.message; }
};
"""


@pytest.fixture(scope="module")
def frontend(tmp_path_factory):
    """One small static page served from another origin: the configured one, and a second,
    unlisted port serving the same files."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path_factory.mktemp("frontend")
    (root / "index.html").write_text('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>frontend'
                                     '</title><script src="app.js"></script></head><body>shop frontend</body></html>')
    (root / "app.js").write_text(FRONTEND_JS)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    servers = [ThreadingHTTPServer(("127.0.0.1", port), handler) for port in (FRONTEND_PORT, free_port())]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{srv.server_port}" for srv in servers]
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_a_frontend_on_another_origin_uses_the_api_with_a_bearer_token(server, browser, frontend, client):
    """The workshop frontend's documented set-up: its page on one port, the API on another.
    Register, log in, list products, add to the cart, all cross-origin through CORS; the same page
    from an origin CORS_ORIGIN does not name is refused by the browser."""
    with use_flags(PRESETS[1].flags):
        _, token = Api(client).register(seller=True)
        cat = Api(client).category(token)
        product = Api(client).product(token, cat["id"], inventory_quantity=5)
    allowed, other = frontend
    page = browser.new_page()
    try:
        page.goto(allowed + "/index.html")
        name = unique()
        out = page.evaluate("([api, u, p, id]) => window.shop(api, u, p, id)", [server, name, PASSWORD, product["id"]])
        assert out["register"]["status"] == 201 and out["login"]["status"] == 200, out
        assert product["id"] in [x["id"] for x in out["products"]["body"]["data"]["products"]]
        assert out["add"]["status"] == 201
        assert [(i["productId"], i["quantity"]) for i in out["cart"]["body"]["data"]["cart"]["items"]] == [
            (product["id"], 2)]
        page.goto(other + "/index.html")
        assert page.evaluate("(api) => window.refused(api)", server).startswith("refused: ")
    finally:
        page.close()
