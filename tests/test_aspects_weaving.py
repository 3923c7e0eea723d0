"""Weaving: the repository code is untouched, originals stay callable, uninstall restores."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import wrapt

from shop import aspects
from shop.aspects.table import ROUTES
from shop.repositories import mysql

ROOT = Path(__file__).resolve().parent.parent


def routed_methods():
    return [(getattr(mysql, r.repository), r.method) for r in ROUTES]


def test_every_route_names_a_real_method_and_every_public_method_has_a_route():
    import inspect
    named = {(r.repository, r.method) for r in ROUTES}
    public = {(name, m) for name in mysql.__all__
              for m, f in inspect.getmembers(getattr(mysql, name), inspect.isfunction) if not m.startswith("_")}
    assert named == public


def test_methods_are_woven_and_originals_callable_unwrapped(db):
    assert aspects.installed()
    for cls, name in routed_methods():
        assert isinstance(cls.__dict__[name], wrapt.FunctionWrapper), (cls, name)
    users = mysql.UserRepository(db)
    original = mysql.UserRepository.__dict__["get_by_id"].__wrapped__
    assert original(users, 2_000_000_000) is None  # the original runs with no routing at all


def test_install_twice_is_a_no_op_and_uninstall_restores(db):
    before = {(c, n): c.__dict__[n] for c, n in routed_methods()}
    originals = {(c, n): f.__wrapped__ for (c, n), f in before.items()}
    aspects.install()
    assert {(c, n): c.__dict__[n] for c, n in routed_methods()} == before  # no double wrapping
    try:
        aspects.uninstall()
        aspects.uninstall()
        for (cls, name), original in originals.items():
            assert cls.__dict__[name] is original
        assert mysql.UserRepository(db).get_by_id(2_000_000_000) is None
    finally:
        aspects.install()
    for cls, name in routed_methods():
        assert isinstance(cls.__dict__[name], wrapt.FunctionWrapper)


def test_weaving_happens_when_the_repositories_are_imported_later():
    code = ("import sys; import shop.aspects as a; a.install();"
            "assert 'shop.repositories.mysql' not in sys.modules;"
            "from shop.repositories.mysql import UserRepository as U; import wrapt;"
            "print(type(U.__dict__['get_by_id']).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "FunctionWrapper"


def test_repository_code_knows_nothing_of_routing():
    words = ("aspects", "READ_DDB", "WRITE_DDB", "READ_MYSQL", "WRITE_MYSQL", "dynamodb", "Flags")
    for path in (ROOT / "shop" / "repositories" / "mysql").glob("*.py"):
        text = path.read_text()
        assert not [w for w in words if w in text], path
