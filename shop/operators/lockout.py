"""Failed operator sign-ins, counted per account and per client address.

The counters live in the rate limiter's storage (Redis: every gunicorn worker and every server
counts the same attempts). Past SHOP_OPERATOR_LOCKOUT (default 5 per 15 minutes) of either, the
account, or the address, is locked until the window ends: every attempt is refused with 429 and
Retry-After, the right secret included, so guessing on stops paying. Per account stops many
addresses guessing one account; per address stops one address trying many names. The price: a
stranger can lock an operator out of the page for a window (the CLI still works, and
`scripts/flask.sh operator unlock NAME` ends it).

Independent of RATE_LIMIT_ENABLED: that switch is about request volume, this about guessing.
"""
from __future__ import annotations

import logging
import math
import threading
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger("shop.operators")
SCOPE = "operator-failures"


class Lockout:
    def __init__(self, limiter, limit: str, prefix: str):
        self.limiter = limiter  # Flask-Limiter: its strategy, on its storage (and its in-memory fallback)
        self.limit = parse(limit)
        self.prefix = prefix
        self._fallback = FixedWindowRateLimiter(MemoryStorage())
        self._counting = threading.Lock()  # counts as the fixed window the limiter's default strategy keeps

    def _keys(self, account: str, address: str) -> list[tuple[str, ...]]:
        return [(self.prefix, SCOPE, "account", account), (self.prefix, SCOPE, "address", address)]

    def _call(self, method: str, key: tuple[str, ...]):
        try:
            return getattr(self.limiter.limiter, method)(self.limit, *key)
        except Exception as exc:  # noqa: BLE001 - storage unreachable: count in this process, never not at all
            log.warning("operator lockout counted in this worker only: the limiter's storage is unreachable",
                        extra={"event": "operator", "error_type": type(exc).__name__})
            return getattr(self._fallback, method)(self.limit, *key)

    def locked(self, account: str, address: str) -> dict[str, int]:
        """{"account"|"address": seconds until that lock ends} for each that is locked now."""
        out = {}
        for key in self._keys(account, address):
            if not self._call("test", key):
                out[key[2]] = max(1, math.ceil(self._call("get_window_stats", key).reset_time - time.time()))
        return out

    def failed(self, account: str, address: str) -> tuple[dict[str, int], list[str]]:
        """Count one failed attempt; then what is locked, as `locked` says, and which of those this
        failure locked (the others were locked by attempts checked at the same time)."""
        counts = {key[2]: self._count(key) for key in self._keys(account, address)}
        locked = self.locked(account, address)
        # Of attempts checked at the same time, only the one whose failure reached the limit locked it.
        return locked, [kind for kind in locked if counts[kind] == self.limit.amount]

    def _count(self, key: tuple[str, ...]) -> int:
        """One more failure under `key` (a fixed window, as the limiter counts); the count now."""
        item = (self.limit.key_for(*key), self.limit.get_expiry())
        # Redis increments and answers atomically; the in-memory storage (no Redis, or the limiter's
        # fallback) reads the count back after its own lock: two threads could both see the limit.
        with self._counting:
            try:
                return self.limiter.limiter.storage.incr(*item, amount=1)
            except Exception as exc:  # noqa: BLE001 - as _call
                log.warning("operator lockout counted in this worker only: the limiter's storage is unreachable",
                            extra={"event": "operator", "error_type": type(exc).__name__})
                return self._fallback.storage.incr(*item, amount=1)

    def clear(self, kind: str, value: str) -> None:
        """End a lock: `kind` "account" or "address" (an operator locked out by a stranger)."""
        key = (self.prefix, SCOPE, kind, value)
        self._fallback.clear(self.limit, *key)
        self.limiter.limiter.clear(self.limit, *key)
