"""A DynamoDB read the caller may give up on, counted once in the metrics and the evidence.

A read given up at its time limit is a failure as soon as the caller stops waiting; its answer
may still come later, on the pool thread that made it. Counted there too, one read would be two
(a failure and a success), and the error rate the guard and the gates judge would be diluted by
every late answer. A read on the caller's thread that answers after the limit is served as a
timeout, so it is counted as one. Whoever settles the read first (its answer or the caller)
counts it; the other counts nothing.
"""
from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from typing import Callable

# The tally of the DynamoDB read under way in this context, if its caller may give up on it.
_CURRENT: contextvars.ContextVar["ReadTally | None"] = contextvars.ContextVar("shop_read_tally", default=None)


class ReadTally:
    def __init__(self, record: Callable[[float, bool], None], hold: bool = False):
        """`record(seconds, failed)` counts the read. `hold`: the caller judges the answer (on
        its own thread, where a late answer is served as a timeout) before it is counted."""
        self._record, self._hold = record, hold
        self._lock = threading.Lock()
        self._done = False
        self._seen: tuple[float, bool] | None = None

    def answered(self, seconds: float, failed: bool) -> None:
        """The store's answer came (on whichever thread made the read)."""
        with self._lock:
            if self._done:
                return  # the caller gave up first: counted as failed then
            if self._hold:
                self._seen = (seconds, failed)
                return
            self._done = True
        self._record(seconds, failed)

    def settle(self, waited_s: float, late: bool) -> None:
        """The caller is done with the read: given up (late, no answer yet) or judged."""
        with self._lock:
            if self._done:
                return  # the answer came first and was counted
            self._done = True
            seconds, failed = self._seen or (waited_s, True)
        self._record(seconds, failed or late)


def current() -> ReadTally | None:
    return _CURRENT.get()


@contextmanager
def tallied(tally: ReadTally):
    """The DynamoDB read made inside is counted through `tally` (shop.aspects.router._observe_read)."""
    token = _CURRENT.set(tally)
    try:
        yield tally
    finally:
        _CURRENT.reset(token)
