"""The init-db and seed commands, and configuration errors."""
from __future__ import annotations

import pytest

from shop import create_app
from shop.config import ConfigError, Settings

from .conftest import TEST_DB, make_settings


def test_init_db_is_idempotent(app):
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0 and f"schema ready in {TEST_DB}" in result.output


def test_seed_refuses_a_non_empty_database_and_skips_if_empty(app):
    runner = app.test_cli_runner()
    app.test_client().post("/api/auth/register", json={"username": "seedcheck_user", "email": "seedcheck@x.com",
                                                       "password": "Secret123!"})
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 1 and "already has users" in result.output
    result = runner.invoke(args=["seed", "--if-empty"])
    assert result.exit_code == 0 and "seed skipped" in result.output


SCRATCH = TEST_DB + "_seed"  # created empty by `make services`


def empty_scratch(db) -> None:
    """Drop every table of the scratch database, so the shared test database is left alone."""
    with db.cursor(write=True) as cur:
        cur.execute("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = %s", (SCRATCH,))
        tables = [r["t"] for r in cur.fetchall()]
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for t in tables:
            cur.execute(f"DROP TABLE `{SCRATCH}`.`{t}`")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")


def test_seed_loads_the_catalogue_into_an_empty_database(db):
    """Seeds a scratch database, so the shared test database is left alone."""
    empty_scratch(db)
    app = create_app(make_settings(mysql_database=SCRATCH))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0 and "'products': 18" in result.output
    r = app.test_client().post("/api/auth/login", json={"username": "demo_user", "password": "Password123!"})
    assert r.status_code == 200
    assert app.test_client().get("/api/categories").get_json()["data"]["categories"][0]["children"]
    app.extensions["shop"].db.close()


def test_init_db_gives_an_existing_database_the_fulfilment_statuses(db):
    """A database made by the earlier schema (orders.status with three values) gets processing,
    shipped and delivered from init-db, and keeps its orders; a second run changes nothing."""
    empty_scratch(db)
    app = create_app(make_settings(mysql_database=SCRATCH))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    column = ("SELECT column_type AS t FROM information_schema.columns WHERE table_schema = %s"
              " AND table_name = 'orders' AND column_name = 'status'")
    with db.cursor(write=True) as cur:
        cur.execute(f"ALTER TABLE `{SCRATCH}`.orders MODIFY status ENUM('pending', 'completed', 'cancelled')"
                    " NOT NULL DEFAULT 'pending'")
        cur.execute(f"INSERT INTO `{SCRATCH}`.users (username, email, password_hash) VALUES ('old', 'o@x.io', 'x')")
        cur.execute(f"INSERT INTO `{SCRATCH}`.orders (user_id, total_amount, status)"
                    f" SELECT id, 5, 'completed' FROM `{SCRATCH}`.users")
        cur.execute(column, (SCRATCH,))
        assert "processing" not in cur.fetchone()["t"]
    for _ in range(2):
        assert runner.invoke(args=["init-db"]).exit_code == 0
        with db.cursor(write=True) as cur:
            cur.execute(column, (SCRATCH,))
            assert cur.fetchone()["t"].endswith("'processing','shipped','delivered')")
            cur.execute(f"UPDATE `{SCRATCH}`.orders SET status = 'shipped'")
            cur.execute(f"SELECT status FROM `{SCRATCH}`.orders")
            assert [r["status"] for r in cur.fetchall()] == ["shipped"]
    app.extensions["shop"].db.close()


def test_init_db_reports_an_unreachable_database():
    app = create_app(make_settings(mysql_port=1, mysql_connect_timeout=1))
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 1 and "cannot reach MySQL at 127.0.0.1:1" in result.output


@pytest.mark.parametrize("env,message", [
    ({"MYSQL_PORT": "abc"}, "MYSQL_PORT must be an integer"),
    ({"MYSQL_POOL_SIZE": "0"}, "MYSQL_POOL_SIZE must be >= 1"),
    ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32 characters"),
    ({"RATE_LIMIT_ENABLED": "maybe"}, "RATE_LIMIT_ENABLED must be true or false"),
])
def test_invalid_configuration_is_refused(monkeypatch, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=message):
        Settings.from_env()


def test_defaults_match_the_documentation(monkeypatch):
    for k in ("MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_DATABASE", "DYNAMODB_ENDPOINT",
              "PORT", "SECRET_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SHOP_ENV", "development")  # the one place the published key is accepted
    s = Settings.from_env()
    assert (s.mysql_host, s.mysql_port, s.mysql_user, s.mysql_password, s.mysql_database) == (
        "127.0.0.1", 3306, "shop", "shop", "online_shopping_store")
    assert s.dynamodb_endpoint == "http://127.0.0.1:8000" and s.port == 5000
    monkeypatch.setenv("DYNAMODB_ENDPOINT", "")
    assert Settings.from_env().dynamodb_endpoint is None


def test_dynamodb_table_commands(settings):
    from dataclasses import replace

    from .conftest import unique
    app = create_app(replace(settings, dynamodb_table_prefix=unique("cli")))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["ddb-create-tables"])
    assert first.exit_code == 0 and first.output.count(": created") == 4
    second = runner.invoke(args=["ddb-create-tables"])
    assert second.exit_code == 0 and second.output.count("already exists") == 4
    refused = runner.invoke(args=["ddb-delete-tables"])
    assert refused.exit_code == 1 and "add --yes" in refused.output
    seeded = runner.invoke(args=["ddb-seed-counters", "--gap", "10"])
    assert seeded.exit_code == 0 and "order: counter at" in seeded.output
    from shop.repositories.dynamodb import IdAllocator
    ids = IdAllocator(app.extensions["shop"].dynamo)
    with app.extensions["shop"].db.cursor() as cur:
        cur.execute("SELECT MAX(id) AS m FROM users")
        mysql_max = cur.fetchone()["m"] or 0
    assert ids.current("user") == mysql_max + 10
    assert ids.allocate("user")[0] > mysql_max  # DynamoDB-only ids never collide with MySQL's
    assert runner.invoke(args=["ddb-seed-counters", "--gap", "0"]).exit_code == 0
    assert ids.current("user") == mysql_max + 11  # never lowered
    assert runner.invoke(args=["ddb-seed-counters"]).exit_code == 0  # SHOP_ID_GAP, as the phase switch uses
    assert ids.current("user") == mysql_max + app.extensions["shop"].settings.id_gap
    deleted = runner.invoke(args=["ddb-delete-tables", "--yes"])
    assert deleted.exit_code == 0 and deleted.output.count(": deleted") == 4


def test_dynamodb_commands_report_an_unreachable_endpoint(settings):
    from dataclasses import replace
    app = create_app(replace(settings, dynamodb_endpoint="http://127.0.0.1:1", dynamodb_max_attempts=1,
                             dynamodb_connect_timeout=1))
    result = app.test_cli_runner().invoke(args=["ddb-create-tables"])
    assert result.exit_code == 1 and "unreachable" in result.output
