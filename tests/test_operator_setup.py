"""An operator's set-up: the commands beside `make run` read the server's own settings, `phase
status` says which stores it reads and warns when they are not the server's, and a developer's
server and its passwordless flag page stay on this machine."""
from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from shop import create_app
from shop.runenv import FIELDS, save

from .conftest import TEST_DB
from .test_cli_config import SCRATCH, empty_scratch

ROOT = Path(__file__).resolve().parent.parent
# What an operator's shell has: none of the server's settings.
UNSET = set(FIELDS) | {"PORT", "HOST"}


def shell_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("MAKE")}
    env.update(OTEL_TRACES_EXPORTER="none", LOG_LEVEL="ERROR", **extra)
    return env


def run(args, **extra):
    out = subprocess.run(args, cwd=ROOT, env=shell_env(**extra), capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout, out.stderr


def test_make_run_binds_loopback_unless_told_and_saves_its_settings():
    code, out, err = run(["make", "-n", "run", "PORT=5299"])
    assert code == 0, err
    assert "--bind 127.0.0.1:5299" in out and "0.0.0.0" not in out
    assert "-m shop.runenv save .run/settings.env http://127.0.0.1:5299" in out
    code, out, _ = run(["make", "-n", "run", "PORT=5299", "HOST=0.0.0.0"])
    assert "--bind 0.0.0.0:5299" in out


@pytest.fixture
def saved(settings, tmp_path):
    """The settings file `make run` would write for a server on the test database and tables."""
    path = tmp_path / "settings.env"
    save(path, replace(settings, shop_env="development"), "http://127.0.0.1:5299")
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds the key
    return path


def test_flask_sh_and_make_flask_read_the_servers_settings(settings, saved, seller):
    for command in (["bash", "scripts/flask.sh", "phase", "status"], ["make", "-s", "flask", "ARGS=phase status"]):
        code, out, err = run(command, SHOP_RUN_SETTINGS=str(saved))
        assert code == 0, err
        assert f"reading MySQL database {TEST_DB} at 127.0.0.1:3306" in out, out
        assert f"reading DynamoDB tables {settings.dynamodb_table_prefix}-users" in out
        assert "NOTHING IS STORED" not in out and "phase " in out
    # A variable of the operator's own environment wins, and says so.
    code, out, err = run(["bash", "scripts/flask.sh", "phase", "status"], SHOP_RUN_SETTINGS=str(saved),
                         MYSQL_DATABASE=SCRATCH, DYNAMODB_TABLE_PREFIX="nothere")
    assert "MYSQL_DATABASE comes from your environment, not from the server's settings" in err
    assert f"reading MySQL database {SCRATCH}" in out


def test_phase_status_warns_loudly_about_an_empty_or_missing_store(settings, db):
    empty_scratch(db)
    app = create_app(replace(settings, mysql_database=SCRATCH, dynamodb_table_prefix="nowhere0"))
    result = app.test_cli_runner().invoke(args=["phase", "status"])
    out = result.output
    assert f"reading MySQL database {SCRATCH} at 127.0.0.1:3306" in out
    assert "reading DynamoDB tables nowhere0-users, nowhere0-catalog" in out
    assert f"!! WARNING: MySQL database {SCRATCH} lacks the tables" in out
    assert "!! WARNING: DynamoDB at http://127.0.0.1:8000 has no table nowhere0-users" in out
    assert f"!! WARNING: NOTHING IS STORED in MySQL database {SCRATCH}" in out
    assert "Traceback" not in out  # a missing schema is said, never raised
    assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    out = app.test_cli_runner().invoke(args=["phase", "status", "--json"]).output
    assert '"missing_tables": []' in out and "NOTHING IS STORED" in out
    app.extensions["shop"].db.close()


@pytest.mark.parametrize("path", ["/flags", "/metrics", "/flags/health.json"])
def test_the_passwordless_flag_page_answers_loopback_clients_only(app, settings, path):
    client = app.test_client()
    for address in ("192.0.2.7", "10.0.0.2", "::ffff:192.0.2.7"):
        r = client.get(path, environ_base={"REMOTE_ADDR": address})
        assert r.status_code == 403 and "loopback" in r.get_data(as_text=True), (address, r.status_code)
    for address in ("127.0.0.1", "::1"):
        assert client.get(path, environ_base={"REMOTE_ADDR": address}).status_code == 200
    secret = "Seven-Lanterns-on-a-hill"  # the deprecated shared account, `operator`
    locked = create_app(replace(settings, flags_page_password=secret))
    remote = {"REMOTE_ADDR": "192.0.2.7"}
    assert locked.test_client().get(path, environ_base=remote).status_code == 401
    assert locked.test_client().get(path, environ_base=remote, auth=("operator", secret)).status_code == 200
    locked.extensions["shop"].runtime.close()
