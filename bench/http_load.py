"""Requests per second and latency of the storefront under wrk, per migration phase.

Six gunicorn servers run side by side: the five presets and the same app with the aspects
uninstalled (SHOP_ASPECTS=off). wrk loads each in turn, round after round, so the ratios
compare runs made under the same machine conditions.
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import PREFIX, make_app, seed_products

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    return rps, ms("50"), ms("99")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    from shop.aspects import PRESETS
    app = make_app()
    _, _, (product,) = seed_products(app)
    app.extensions["shop"].runtime.close()
    settings = app.extensions["shop"].settings
    scenarios = [("aspects uninstalled", {"SHOP_ASPECTS": "off", "SHOP_FLAGS": str(PRESETS[0].flags)})] + [
        (f"{p.number}. {p.name}", {"SHOP_FLAGS": str(p.flags)}) for p in PRESETS]
    path = f"/api/products/{product.id}"
    results = load_side_by_side(settings, scenarios, path, args.rounds, args.seconds, args.connections)

    base = sum(r[0] for r in results["aspects uninstalled"]) / args.rounds
    print(f"\n## HTTP GET {path}: wrk -t2 -c{args.connections}, {args.rounds} rounds of {args.seconds}s per scenario,"
          " gunicorn 2 workers x 4 threads")
    print(f"{'scenario':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/s ratio':>12}")
    for name, rows in results.items():
        rps = sum(r[0] for r in rows) / len(rows)
        p50 = sum(r[1] for r in rows) / len(rows)
        p99 = max(r[2] for r in rows)
        print(f"{name:34} {rps:9.1f} {p50:8.2f} {p99:8.2f} {rps / base:12.3f}")



def load_side_by_side(settings, scenarios, path: str, rounds: int, seconds: int, connections: int,
                      rotate: bool = False) -> dict:
    """One gunicorn (2 workers x 4 threads) per scenario (name, extra environment), all started
    first, then loaded in turn with wrk round after round: {name: [(req/s, p50 ms, p99 ms), ...]}.
    With `rotate`, each round starts from the next server (the first loaded after a pause ran
    slower or faster by more than some scenarios differ)."""
    servers = []
    try:
        for name, extra in scenarios:
            port = free_port()
            env = {**os.environ, "MYSQL_DATABASE": settings.mysql_database, "DYNAMODB_TABLE_PREFIX": PREFIX,
                   "SECRET_KEY": settings.secret_key, "RATE_LIMIT_ENABLED": "false", "OTEL_TRACES_EXPORTER": "none",
                   "LOG_LEVEL": "WARNING", "SHOP_CALL_LOG_LEVEL": "DEBUG", **extra}
            proc = subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), "--bind", f"127.0.0.1:{port}",
                                     "--workers", "2", "--threads", "4", "shop:create_app()"], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers.append((name, port, proc))
        for _, port, _ in servers:
            wait_ready(f"http://127.0.0.1:{port}/api/health")
        results = {name: [] for name, _, _ in servers}
        for _, port, _ in servers:  # warm-up
            wrk(f"http://127.0.0.1:{port}{path}", 1, connections)
        for r in range(rounds):
            turn = r % len(servers) if rotate else 0
            for name, port, _ in servers[turn:] + servers[:turn]:
                results[name].append(wrk(f"http://127.0.0.1:{port}{path}", seconds, connections))
        return results
    finally:
        for _, _, proc in servers:
            proc.terminate()
        for _, _, proc in servers:
            proc.wait(15)

if __name__ == "__main__":
    main()
