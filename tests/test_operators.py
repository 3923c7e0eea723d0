"""Operators are named accounts (issue 24): secrets of their own, stored hashed, weak ones refused;
failed sign-ins locked out per account and per address across workers; the audit trail names the
account that signed in, and every refused phase move is in it."""
from __future__ import annotations

import logging
import os
import re
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from shop import create_app
from shop.config import ConfigError, Settings
from shop.migration.control import PhaseControl

from .conftest import unique

ALICE = "amber-Kettle-42-window"
BOB = "violet-Harbor-17-lantern"


@pytest.fixture
def accounts(tmp_path):
    return str(tmp_path / "operators")


@pytest.fixture
def make(settings, accounts, app):
    """Servers in production mode reading one accounts file and sharing the limiter's counters
    (two of them are two gunicorn workers), over the session's prepared stores (`app`)."""
    made = []
    prefix = unique("op")

    def build(**overrides):
        s = replace(settings, shop_env="production", operators_file=accounts, rate_limit_key_prefix=prefix,
                    **overrides)
        app = create_app(s)
        made.append(app)
        return app
    yield build
    for app in made:
        app.extensions["shop"].runtime.close()
        app.extensions["shop"].db.close()


def cli(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def add(app, name, secret):
    out = cli(app, "operator", "add", name, "--password-stdin", input=secret + "\n")
    assert out.exit_code == 0, out.output
    return out


def sign_in(app, name, secret, path="/flags", address="127.0.0.1"):
    return app.test_client().get(path, auth=(name, secret), environ_base={"REMOTE_ADDR": address})


@pytest.mark.parametrize("password", ["a", " ", "operator-password", "aaaaaaaaaaaaaaaaaaaa",
                                      "change-me-operator-password", "my-operator-secret-1234"])
def test_a_weak_shared_password_stops_start_up(monkeypatch, password):
    """`SHOP_FLAGS_PAGE_PASSWORD=a` (or a single space) was accepted; in development too now."""
    for env in ("production", "development"):
        monkeypatch.setenv("SHOP_ENV", env)
        monkeypatch.setenv("SHOP_FLAGS_PAGE_PASSWORD", password)
        with pytest.raises(ConfigError, match="SHOP_FLAGS_PAGE_PASSWORD"):
            Settings.from_env()
    monkeypatch.setenv("SHOP_FLAGS_PAGE_PASSWORD", "Seven-Lanterns-on-a-hill")
    assert Settings.from_env().flags_page_password == "Seven-Lanterns-on-a-hill"


def test_accounts_are_added_rotated_and_removed_with_hashed_secrets(make, accounts):
    app = make()
    out = cli(app, "operator", "add", "alice", input=f"{ALICE}\n{ALICE}\n")  # prompted twice, never echoed
    assert out.exit_code == 0 and ALICE not in out.output, out.output
    text = open(accounts).read()
    assert ALICE not in text and re.search(r"^alice:\$2b\$", text, re.M)
    assert stat.S_IMODE(os.stat(accounts).st_mode) == 0o600
    for name, secret, why in (("bob", "short", "shorter than 16"), ("bob", "bob-" + "x" * 20, "fewer than 8"),
                              ("bob", "Bob-Is-My-Name-1234", "account's name"), ("Bob!", BOB, "cannot be")):
        out = cli(app, "operator", "add", name, "--password-stdin", input=secret + "\n")
        assert out.exit_code == 1 and why in out.output, out.output
    assert cli(app, "operator", "add", "alice", "--password-stdin", input=BOB + "\n").exit_code == 1
    add(app, "bob", BOB)
    assert cli(app, "operator", "list").output.split() == ["alice", "bob"]
    assert sign_in(app, "alice", ALICE).status_code == 200
    assert cli(app, "operator", "rotate", "alice", "--password-stdin", input=BOB + "-new\n").exit_code == 0
    assert sign_in(app, "alice", ALICE).status_code == 401  # the old secret stops at once
    assert sign_in(app, "alice", BOB + "-new").status_code == 200
    assert cli(app, "operator", "remove", "bob").exit_code == 0
    assert sign_in(app, "bob", BOB).status_code == 401
    assert cli(app, "operator", "remove", "bob").exit_code == 1


def test_who_is_the_account_that_signed_in(make):
    app = make()
    add(app, "alice", ALICE)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = _basic("Alice", ALICE)  # names are not case-sensitive
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/flags").get_data(as_text=True)).group(1)
    reason = unique("who ")
    client.post("/flags/phase", data={"csrf_token": token, "phase": "3", "reason": reason})  # refused by its gates
    (entry,) = [e for e in PhaseControl(app.extensions["shop"]).store.history(50) if e["reason"] == reason]
    assert entry["who"] == "alice (flag page)" and entry["outcome"] == "refused"
    # Another name with alice's secret is no one: the typed name is never taken on trust.
    assert sign_in(app, "pretending-to-be-the-owner", ALICE).status_code == 401


def _basic(name, secret):
    import base64
    return "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()


def test_every_refused_phase_move_is_audited(make, settings):
    app = make()
    add(app, "alice", ALICE)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = _basic("alice", ALICE)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/flags").get_data(as_text=True)).group(1)
    control = PhaseControl(app.extensions["shop"])
    for target in ("0", "6", "-1", "99999999999999999999999"):
        reason = unique("out of range ")
        r = client.post("/flags/phase", data={"csrf_token": token, "phase": target, "reason": reason})
        assert r.status_code == 303
        (entry,) = [e for e in control.store.history(50) if e["reason"] == reason]
        assert (entry["who"], entry["outcome"], entry["to"]) == ("alice (flag page)", "refused", target[:20])
    pinned = create_app(replace(settings, shop_flags_pinned=True))
    reason = unique("pinned ")
    assert not PhaseControl(pinned.extensions["shop"]).set(2, "pytest", reason=reason).ok
    (entry,) = [e for e in control.store.history(50) if e["reason"] == reason]
    assert entry["outcome"] == "refused" and "SHOP_FLAGS_PINNED" in entry["gates"][0]["name"]
    pinned.extensions["shop"].runtime.close()


def test_failed_sign_ins_lock_the_account_across_workers(make, caplog):
    first, second = make(), make()
    add(first, "alice", ALICE)
    caplog.set_level(logging.INFO, "shop.operators")
    codes = []
    for n in range(7):  # alternately on each worker, from addresses of their own
        worker = (first, second)[n % 2]
        path = ("/flags", "/metrics", "/flags/health.json")[n % 3]
        r = sign_in(worker, "alice", f"guess-number-{n}-wrong", path=path, address=f"10.0.0.{n}")
        codes.append(r.status_code)
    assert codes == [401, 401, 401, 401, 429, 429, 429]
    r = sign_in(second, "alice", ALICE, address="10.0.1.1")  # the right secret, from a new address
    assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert "WWW-Authenticate" not in r.headers
    (locked,) = [rec for rec in caplog.records if rec.getMessage() == "operator locked out"]
    assert (locked.levelno, locked.account, locked.locked, locked.limit) == (
        logging.WARNING, "alice", ["account"], "5 per 15 minute")
    assert sign_in(first, "bob", BOB, address="10.0.2.1").status_code == 401  # other accounts go on
    assert cli(first, "operator", "unlock", "alice").exit_code == 0
    assert sign_in(second, "alice", ALICE, address="10.0.1.1").status_code == 200


def test_failed_sign_ins_lock_the_address_whatever_the_name(make):
    app = make()
    add(app, "alice", ALICE)
    codes = [sign_in(app, name, "not-the-right-secret", address="10.9.9.9").status_code
             for name in ("alice", "bob", "carol", "dave", "erin", "frank")]
    assert codes == [401, 401, 401, 401, 429, 429]
    assert sign_in(app, "alice", ALICE, address="10.9.9.9").status_code == 429
    assert sign_in(app, "alice", ALICE, address="10.9.9.10").status_code == 200  # alice: 1 failure of 5


def test_the_lockout_holds_with_request_limits_off(make):
    """RATE_LIMIT_ENABLED=false turns off request limits, not the guard against guessing."""
    app = make(rate_limit_enabled=False)
    add(app, "alice", ALICE)
    codes = [sign_in(app, "alice", "not-the-right-secret").status_code for _ in range(6)]
    assert codes == [401] * 4 + [429] * 2


def test_the_deprecated_shared_password_is_the_account_operator(settings):
    app = create_app(replace(settings, shop_env="production", flags_page_password="Seven-Lanterns-on-a-hill",
                             rate_limit_key_prefix=unique("op")))
    c = app.test_client()
    assert c.get("/flags", auth=("operator", "Seven-Lanterns-on-a-hill")).status_code == 200
    assert c.get("/flags", auth=("anyone", "Seven-Lanterns-on-a-hill")).status_code == 401
    app.extensions["shop"].runtime.close()


def test_an_unreadable_accounts_file_lets_nobody_in(make, accounts):
    app = make()
    add(app, "alice", ALICE)
    assert sign_in(app, "alice", ALICE).status_code == 200
    with open(accounts, "a") as f:
        f.write("this line is not an account\n")
    assert sign_in(app, "alice", ALICE).status_code == 401


def test_a_lockout_reached_by_simultaneous_guesses_is_logged_once(make, caplog):
    """Eight guesses checked at once: several pass the count before the lock, one reaches it."""
    app = make()
    add(app, "alice", ALICE)
    caplog.set_level(logging.INFO, "shop.operators")
    barrier = threading.Barrier(8)

    def guess(n):
        barrier.wait()
        return sign_in(app, "alice", f"simultaneous-guess-{n}", address=f"10.3.0.{n}").status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(guess, range(8)))
    assert set(codes) <= {401, 429} and codes.count(401) <= 4  # those counted after the 5th see the lock
    locked = [rec for rec in caplog.records if rec.getMessage() == "operator locked out"]
    assert [(rec.account, rec.locked) for rec in locked] == [("alice", ["account"])]
