"""Slow clients, as an attacker holds them: sockets that send part of a request and wait.

`SlowClients` keeps `partial` sockets that sent half a header (a request line and one header, no
blank line) and `no_body` sockets whose complete header announces a body that never comes. A
socket the server closes (a 408 after its header or body timeout) is opened again at once, so the
pressure never drops. `timed_requests` measures ordinary requests made meanwhile.
"""
from __future__ import annotations

import http.client
import select
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

PARTIAL = b"GET /api/health HTTP/1.1\r\nHost: x\r\n"
NO_BODY = (b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 64\r\n\r\n")


class SlowClients:
    def __init__(self, host: str, port: int, partial: int = 64, no_body: int = 16):
        self.address = (host, port)
        self.wanted = [PARTIAL] * partial + [NO_BODY] * no_body
        self.cut = 0          # sockets the server closed (each reopened at once)
        self.refused = 0      # connections that could not be opened
        self._open: dict[socket.socket, bytes] = {}
        self._missing: list[bytes] = []  # refused: tried again on the next round
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def __enter__(self) -> "SlowClients":
        for payload in self.wanted:
            self._connect(payload)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        for s in list(self._open):
            s.close()

    @property
    def held(self) -> int:
        return len(self._open)

    def _connect(self, payload: bytes) -> None:
        try:
            s = socket.create_connection(self.address, timeout=5)
            s.sendall(payload)
            s.setblocking(False)
            self._open[s] = payload
        except OSError:
            self.refused += 1
            self._missing.append(payload)

    def _hold(self) -> None:
        while not self._stop.is_set():
            sockets = list(self._open)
            readable = select.select(sockets, [], [], 0.2)[0] if sockets else []
            for s in readable:  # an answer (408) or a close: the server let go of it
                self._missing.append(self._open.pop(s))
                s.close()
                self.cut += 1
            retry, self._missing = self._missing, []
            for payload in retry:
                if not self._stop.is_set():
                    self._connect(payload)


def _one(host: str, port: int, path: str, timeout: float) -> float | None:
    """Seconds for one request on a fresh connection; None when it failed or timed out."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return time.perf_counter() - start if response.status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


def timed_requests(host: str, port: int, path: str, seconds: float, clients: int = 4,
                   timeout: float = 5.0) -> dict:
    """`clients` threads making requests one after another for `seconds`."""
    deadline = time.monotonic() + seconds
    results: list[float | None] = []
    lock = threading.Lock()

    def client():
        while time.monotonic() < deadline:
            took = _one(host, port, path, timeout)
            with lock:
                results.append(took)

    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    answered = sorted(t for t in results if t is not None)
    return {"requests": len(results), "failed": len(results) - len(answered),
            "median": statistics.median(answered) if answered else None,
            "slowest": answered[-1] if answered else None, "timeout": timeout}


def describe(r: dict) -> str:
    if r["median"] is None:
        return f"{r['requests']} requests, all failed or timed out ({r['timeout']:g} s)"
    return (f"{r['requests'] - r['failed']} of {r['requests']} answered (failed or timed out at "
            f"{r['timeout']:g} s: {r['failed']}); median {r['median']:.3f} s, slowest {r['slowest']:.3f} s")
