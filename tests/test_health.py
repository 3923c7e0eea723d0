"""/api/health: the stores the flags in force need, and nothing about the process."""
from __future__ import annotations

from dataclasses import replace

import pytest

from shop import create_app

MYSQL_DOWN = {"mysql_port": 1, "mysql_connect_timeout": 1}
DDB_DOWN = {"dynamodb_endpoint": "http://127.0.0.1:1", "dynamodb_max_attempts": 1, "dynamodb_connect_timeout": 1}


@pytest.fixture
def health_of(settings, app):  # the session app has created the DynamoDB tables
    made = []

    def get(flags, **overrides):
        server = create_app(replace(settings, shop_flags=flags, **overrides))
        made.append(server)
        r = server.test_client().get("/api/health")
        return r.status_code, r.get_json()
    yield get
    for server in made:
        server.extensions["shop"].db.close()


def test_both_stores_while_both_are_written(health_of):
    status, body = health_of("READ_MYSQL,WRITE_MYSQL,WRITE_DDB")
    assert status == 200 and body["data"]["status"] == "OK" and body["data"]["database"] == {"connected": True}
    assert body["data"]["stores"] == {"mysql": {"connected": True}, "dynamodb": {"connected": True}}


def test_nothing_about_the_process(health_of):
    _, body = health_of("READ_MYSQL,WRITE_MYSQL")
    assert set(body["data"]) == {"status", "database", "stores", "phase"}  # the phase is the server's, not the process's
    assert body["data"]["stores"] == {"mysql": {"connected": True}}
    assert set(body["data"]["phase"]) <= {"phase", "label", "flags", "source", "age_seconds", "stale"}


def test_dynamodb_only_server_is_healthy_with_mysql_down(health_of):
    status, body = health_of("READ_DDB,WRITE_DDB", **MYSQL_DOWN)
    assert status == 200 and body["data"]["stores"] == {"dynamodb": {"connected": True}}


@pytest.mark.parametrize("flags,down,message", [
    ("READ_MYSQL,WRITE_MYSQL", MYSQL_DOWN, "MySQL connection failed"),
    ("READ_DDB,WRITE_MYSQL,WRITE_DDB", MYSQL_DOWN, "MySQL connection failed"),
    ("READ_DDB,WRITE_DDB", DDB_DOWN, "DynamoDB connection failed"),
    ("READ_MYSQL,WRITE_MYSQL,WRITE_DDB", DDB_DOWN, "DynamoDB connection failed"),
])
def test_a_needed_store_down_is_unhealthy(health_of, flags, down, message):
    status, body = health_of(flags, **down)
    assert status == 503 and body["error"]["type"] == "SERVICE_UNAVAILABLE"
    assert body["error"]["details"] == message


def test_mysql_only_server_ignores_dynamodb(health_of):
    status, _ = health_of("READ_MYSQL,WRITE_MYSQL", **DDB_DOWN)
    assert status == 200


def test_health_and_metrics_say_the_phase_and_how_old_the_workers_view_is(app, client):
    from shop.api.health import phase as health_phase

    h = client.get("/api/health").get_json()["data"]
    runtime = app.extensions["shop"].runtime
    server = runtime.server_flags()
    assert h["phase"]["flags"] == str(server) and h["phase"]["phase"] == (server.preset.number if server.preset else None)
    assert h["phase"]["source"] in ("SHOP_FLAGS", "stored") and h["phase"]["stale"] is False
    assert 0 <= h["phase"]["age_seconds"] <= 2 * runtime.phase.refresh_s
    text = client.get("/metrics").get_data(as_text=True)
    assert f"shop_phase {float(h['phase']['phase'] or 0)}" in text
    assert "shop_phase_read_timestamp_seconds " in text
    ages = [float(line.split()[-1]) for line in text.splitlines() if line.startswith("shop_phase_age_seconds{")]
    assert len(ages) == 1 and 0 <= ages[0] <= 2 * runtime.phase.refresh_s
    import time
    view = runtime.phase
    view.refresh()
    read_at, view.read_at = view.read_at, view.read_at - 3600  # as if the stores had been unreadable for an hour
    try:
        seen = health_phase(runtime)
        assert seen["stale"] is True and seen["age_seconds"] >= 3600
    finally:
        view.read_at = max(view.read_at, read_at)
    assert time.time() - view.read_at < 3600
