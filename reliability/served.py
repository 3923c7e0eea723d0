"""A real server for the scenarios that attack over HTTP: the production entry point
(scripts/serve.sh: nginx in front of gunicorn) or, to measure what it prevents, gunicorn alone
as `make run` starts it (2 workers x 4 threads)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import poll, wait_for_port

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, kind: str, port: int, env: dict, log: Path):
        self.kind, self.port = kind, port
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        if kind == "serve":
            command = ["bash", "scripts/serve.sh"]
        elif kind == "gunicorn":
            command = [gunicorn, "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                       "--threads", "4", "--control-socket", str(log.with_suffix(".ctl")), "shop:create_app()"]
        else:
            raise ValueError(kind)
        environment = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        environment.update(env, PORT=str(port), BIND="127.0.0.1")
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
        if not wait_for_port("127.0.0.1", port, 60) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"{kind} did not start: {log.read_text()[-2000:]}")
        poll(self._healthy, 60, what=f"{kind} to answer /api/health")

    def _healthy(self) -> bool:
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/api/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
