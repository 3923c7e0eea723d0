"""Start and stop a private DynamoDB Local process, to make outages for real."""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from .conftest import wait_for_port


def jar_dir() -> Path:
    cache = Path(os.environ.get("SHOP_CACHE_DIR", Path.home() / ".cache" / "shop"))
    return cache / "dynamodb-local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DynamoDBLocal:
    """A DynamoDB Local that keeps its data on disk, so a restart keeps the tables."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.dir = jar_dir()
        if not (self.dir / "DynamoDBLocal.jar").exists():
            raise RuntimeError(f"DynamoDB Local is not cached in {self.dir}; run `make services`")
        self.data_dir, self.port, self.process = data_dir, port or free_port(), None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "DynamoDBLocal":
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["java", "-Xmx256m", f"-Djava.library.path={self.dir / 'DynamoDBLocal_lib'}", "-jar",
             str(self.dir / "DynamoDBLocal.jar"), "-sharedDb", "-dbPath", str(self.data_dir), "-port", str(self.port)],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port("127.0.0.1", self.port, 60):
            self.stop()
            raise RuntimeError("DynamoDB Local did not start")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
