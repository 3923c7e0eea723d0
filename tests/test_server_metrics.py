"""A real gunicorn server with two workers, as `make run` starts it: /metrics and
/flags/health.json add up what every worker did, whichever worker answers; a worker that
dies is marked dead; log lines carry trace ids on the way out of the queue."""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OPERATOR = ("ops", "Seven-Lanterns-on-a-hill")
FRONTEND = "http://localhost:3000"
ACCESS = re.compile(r"^<(\d+)> (\w+) (\S+) (\d{3})$")

from .conftest import poll as _poll


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Servers start and write logs across processes: a minute before giving up.
poll = partial(_poll, timeout=60.0, every=0.1)


class Server:
    def __init__(self, base, proc, out: Path, err: Path):
        self.base, self.proc, self.out, self.err = base, proc, out, err

    def get(self, path, auth=None, method="GET", headers=None):
        request = urllib.request.Request(self.base + path, method=method, headers=headers or {})
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as r:  # one connection per request
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read().decode()

    def served(self, path) -> list[int]:
        """Pids of the workers that answered `path`, from gunicorn's access log."""
        lines = (ACCESS.match(x) for x in self.out.read_text().splitlines())
        return [int(m.group(1)) for m in lines if m and m.group(3) == path]

    def booted(self) -> list[int]:
        return [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", self.err.read_text())]

    def metrics(self) -> str:
        status, headers, body = self.get("/metrics", OPERATOR)
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return body


@pytest.fixture(scope="module")
def server(app, settings, tmp_path_factory):
    """gunicorn -c gunicorn.conf.py with 2 workers over the test databases (the session's tables)."""
    port = free_port()
    from shop.operators.accounts import Editing, hash_secret

    from .conftest import unique

    logs = tmp_path_factory.mktemp("gunicorn")
    out, err = logs / "access.log", logs / "error.log"
    with Editing(str(logs / "operators")) as accounts:
        accounts[OPERATOR[0]] = hash_secret(OPERATOR[1], 4)
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(MYSQL_DATABASE=settings.mysql_database, DYNAMODB_TABLE_PREFIX=settings.dynamodb_table_prefix,
               SECRET_KEY=settings.secret_key, SHOP_FLAGS="READ_MYSQL,WRITE_MYSQL", RATE_LIMIT_ENABLED="false",
               OTEL_TRACES_EXPORTER="none", LOG_LEVEL="INFO", SHOP_CALL_LOG_LEVEL="INFO",
               SHOP_OPERATORS_FILE=str(logs / "operators"), RATE_LIMIT_KEY_PREFIX=unique("metrics"),
               CORS_ORIGIN=FRONTEND)
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--threads", "2", "--access-logfile", "-",
             "--access-logformat", "%(p)s %(m)s %(U)s %(s)s", "shop:create_app()"],
            cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    s = Server(f"http://127.0.0.1:{port}", proc, out, err)
    try:
        poll(lambda: len(s.booted()) >= 2 or proc.poll() is not None, what="two workers")
        assert proc.poll() is None, err.read_text()[-3000:]
        poll(lambda: _answers(s), what="the server to answer")
        yield s
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _answers(s) -> bool:
    try:
        return s.get("/api/health")[0] == 200
    except OSError:
        return False


def counted(text: str, operation: str) -> int:
    pattern = rf'shop_store_duration_seconds_count\{{kind="read",operation="{re.escape(operation)}",store="mysql"\}} (\S+)'
    found = re.findall(pattern, text)
    return int(float(found[0])) if found else 0


def test_two_workers_add_up_in_metrics_and_health(server, seller):
    product = seller[3]["id"]
    path = f"/api/products/{product}"
    sent = 0
    with ThreadPoolExecutor(4) as pool:
        # Concurrent requests on fresh connections until both workers have answered some.
        while len(set(server.served(path))) < 2:
            assert sent < 400, f"one worker answered all {sent} requests"
            statuses = list(pool.map(lambda _: server.get(path)[0], range(20)))
            assert statuses == [200] * 20
            sent += 20
            poll(lambda: len(server.served(path)) == sent, what="the access log")
    # Each read is one routed call: every worker's share is in the sum.
    assert counted(server.metrics(), "ProductRepository.get_by_id") == sent
    health_pids = set()
    for _ in range(60):
        status, _, body = server.get("/flags/health.json", OPERATOR)
        h = json.loads(body)
        assert status == 200 and h["operations"]["ProductRepository.get_by_id"]["mysql"]["calls"] == sent
        assert h["stores"]["mysql"]["read"]["calls"] >= sent and h["circuit_breakers"] == {"closed": 2}
        health_pids = set(server.served("/flags/health.json"))
        if len(health_pids) == 2:
            break
    assert len(health_pids) == 2, "every health read came from one worker"
    html = server.get("/flags", OPERATOR)[2]
    assert re.search(rf"<strong>ProductRepository.<wbr>get_by_id</strong> on mysql: {sent} calls", html)


def test_metrics_are_operator_only(server):
    assert server.get("/metrics")[0] == 401
    assert server.get("/metrics", ("ops", "wrong"))[0] == 401
    text = server.metrics()
    assert "# TYPE shop_store_duration_seconds histogram" in text and "shop_repairs_pending " in text


def test_a_dead_worker_is_marked_and_its_counts_stay(server, seller):
    path = f"/api/products/{seller[3]['id']}"
    before = counted(server.metrics(), "ProductRepository.get_by_id")
    for _ in range(10):
        assert server.get(path)[0] == 200
    victim = server.served(path)[-1]
    os.kill(victim, signal.SIGKILL)
    poll(lambda: len(server.booted()) >= 3, what="a replacement worker")
    live = set(server.booted()) - {victim}

    def breakers():
        pids = {int(p) for p in re.findall(r'shop_circuit_breaker_state\{pid="(\d+)"\}', server.metrics())}
        return pids if pids == live else None

    poll(breakers, what="the dead worker's gauge to go")  # child_exit marked it dead
    # Counters of the dead worker are kept: what happened, happened.
    assert counted(server.metrics(), "ProductRepository.get_by_id") == before + 10


def test_log_lines_of_the_server_carry_trace_ids(server, seller):
    assert server.get(f"/api/products/{seller[3]['id']}")[0] == 200

    def routed_lines():
        lines = []
        for raw in server.err.read_text().splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # gunicorn's own lines
            if isinstance(line, dict) and line.get("event") == "read":
                lines.append(line)
        return lines

    lines = poll(routed_lines, what="routed log lines")
    assert all(re.fullmatch(r"[0-9a-f]{32}", x["trace_id"] or "") for x in lines), lines[:3]
    assert all(re.fullmatch(r"[0-9a-f]{16}", x["span_id"] or "") for x in lines)


def test_the_real_server_answers_a_cors_preflight_from_the_configured_origin_only(server):
    asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    status, headers, _ = server.get("/api/cart/items", method="OPTIONS", headers={"Origin": FRONTEND, **asked})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == FRONTEND
    assert headers["Access-Control-Allow-Credentials"] == "true" and "POST" in headers["Access-Control-Allow-Methods"]
    assert "authorization" in headers["Access-Control-Allow-Headers"].lower()
    status, headers, _ = server.get("/api/cart/items", method="OPTIONS",
                                    headers={"Origin": "http://elsewhere.example", **asked})
    assert "Access-Control-Allow-Origin" not in headers
