"""The production server (issue 24): nginx in front of gunicorn, so clients that send half a request
hold no gunicorn thread; the same proxy configuration in docker-compose.yml."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import poll, wait_for_port
from .test_server_metrics import free_port

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "nginx" / "default.conf.template"


def test_compose_serves_the_app_only_through_the_proxy():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app, proxy = compose["services"]["app"], compose["services"]["proxy"]
    assert "ports" not in app and app["environment"]["TRUSTED_PROXIES"] == "1"
    assert proxy["ports"] == ["5000:5000"] and proxy["environment"]["SHOP_UPSTREAM"] == "app:5000"
    assert "./infra/nginx/default.conf.template:/etc/nginx/templates/default.conf.template:ro" in proxy["volumes"]
    # No operator secret in the repository: it comes from the environment.
    assert app["environment"]["SHOP_FLAGS_PAGE_PASSWORD"].startswith("${SHOP_FLAGS_PAGE_PASSWORD:?")
    text = TEMPLATE.read_text()
    for directive in ("client_header_timeout 10s;", "client_body_timeout 10s;", "proxy_request_buffering on;",
                      "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"):
        assert directive in text


@pytest.fixture(scope="module")
def served(app, settings, tmp_path_factory):
    """scripts/serve.sh with one worker of two threads over the test database."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(MYSQL_DATABASE=settings.mysql_database, DYNAMODB_TABLE_PREFIX=settings.dynamodb_table_prefix,
               SECRET_KEY=settings.secret_key, SHOP_ENV="production", SHOP_FLAGS="READ_MYSQL,WRITE_MYSQL",
               RATE_LIMIT_ENABLED="false", OTEL_TRACES_EXPORTER="none", LOG_LEVEL="WARNING",
               PORT=str(port), BIND="127.0.0.1", WORKERS="1", THREADS="2")
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "scripts/serve.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert wait_for_port("127.0.0.1", port, 120) and proc.poll() is None, log.read_text()[-3000:]
        poll(lambda: _get(port, "/api/health")[0] == 200, 60, what="the server to answer")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def _get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"X-Forwarded-For": "203.0.113.9"})
        r = conn.getresponse()
        return r.status, r.read()
    except OSError as exc:
        return None, str(exc)
    finally:
        conn.close()


def test_half_sent_requests_hold_no_thread(served):
    """Six times as many half-sent requests as threads: gunicorn alone would answer nothing
    more until they gave up (make reliability, scenario 8); behind nginx the next request is served."""
    held = []
    try:
        for n in range(12):
            s = socket.create_connection(("127.0.0.1", served), timeout=5)
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n" if n % 3 else
                      b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\n\r\n")
            held.append(s)
        for _ in range(4):
            status, body = _get(served, "/api/products?limit=1")
            assert status == 200, body
    finally:
        for s in held:
            s.close()
