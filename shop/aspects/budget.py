"""How long one request may wait on DynamoDB, in all: the documented limits hold end to end.

Each dual read waits for DynamoDB at most SHOP_DUAL_READ_TIMEOUT_MS and each dual write at most
SHOP_DUAL_WRITE_TIMEOUT_MS; but a request makes several routed calls (a cart add reads the
product, the line, writes, reads the cart), and a dual read may look twice more before it calls
a difference a mismatch, so under a stalled DynamoDB the waits added up (cart adds took 27-60 s
against limits of 1.5 and 2 s). A request's budget is those two limits, for all its calls
together: what one call waited is spent, and once a kind is spent the request's remaining calls
of that kind leave DynamoDB out (reads are served and not compared; writes are recorded for
repair, as with the circuit open).

Outside a request (the CLI, jobs, tests calling repositories) there is no budget: each call has
its own limit, as before.
"""
from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager

READ, WRITE = "read", "write"
_current: contextvars.ContextVar["Budget | None"] = contextvars.ContextVar("shop_dynamodb_budget", default=None)


class Budget:
    __slots__ = ("_left", "_lock")

    def __init__(self, read_s: float, write_s: float):
        self._left = {READ: read_s, WRITE: write_s}
        self._lock = threading.Lock()  # a dual read's threads spend from one request's budget

    def left(self, kind: str) -> float:
        return max(0.0, self._left[kind])

    def spend(self, kind: str, seconds: float) -> None:
        with self._lock:
            self._left[kind] -= seconds


def left(kind: str, limit_s: float) -> float:
    """How long the next call of this kind may wait: its own limit, or less if the request has less."""
    budget = _current.get()
    return limit_s if budget is None else min(limit_s, budget.left(kind))


def spend(kind: str, seconds: float) -> None:
    budget = _current.get()
    if budget is not None:
        budget.spend(kind, seconds)


@contextmanager
def waiting(kind: str):
    """Spend, on the request's budget, the time the block waits."""
    start = time.monotonic()
    try:
        yield
    finally:
        spend(kind, time.monotonic() - start)


def begin(read_s: float, write_s: float):
    return _current.set(Budget(read_s, write_s))


def end(token) -> None:
    _current.reset(token)
