"""The metrics directory of a multi-process server (prometheus_client's multiprocess mode).

Each gunicorn worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR; whichever
worker answers /metrics, the flag page or /flags/health.json sums them. The directory must be
set before any worker imports prometheus_client and emptied at each start (old files would
add a previous run's counts), and a worker that exits must be marked dead so that its
per-worker gauges (the circuit breaker) stop counting. gunicorn.conf.py calls these.
"""
from __future__ import annotations

import os
import shutil
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"
_created: list[str] = []


def prepare() -> str:
    """Empty the operator's PROMETHEUS_MULTIPROC_DIR, or create a private one; export it."""
    path = os.environ.get(ENV)
    if path:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
    else:
        path = tempfile.mkdtemp(prefix="shop-metrics-")
        _created.append(path)
        os.environ[ENV] = path
    return path


def worker_exited(pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


def cleanup() -> None:
    """Remove the directory prepare() created (an operator's own directory stays)."""
    while _created:
        shutil.rmtree(_created.pop(), ignore_errors=True)
