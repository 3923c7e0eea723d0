"""How far an entity's reads are exposed to DynamoDB, and the per-request draws that apply it.

Per entity, the phase document holds (shop/migration/state.py, changed by `flask phase compare`
and `flask phase rollout`):

- `compare_percent`: the share of dual reads (phase 3) that read both stores and compare them;
  the others read the authoritative store only. Sampled as LaunchDarkly's checkRatio or
  Scientist's percent, but decided once per request: one draw, so the requests compared read
  both stores for every entity at that percentage (a cart page compares its cart and products,
  or neither), and a share means requests, not calls.
- `compare_mode`: `inline` (both stores on the request's time; a mismatch may raise
  DualReadMismatch) or `shadow` (the request gets the authoritative answer as soon as it has it;
  the other read and the comparison run afterwards, on a bounded pool).
- `read_rollout_percent`: in phase 3, the share of users whose reads DynamoDB serves (phase 4's
  read, falling back to MySQL), sticky per user, or per visitor for anonymous browsers: the
  read canary, so phase 4 is reached in steps. Writes stay server-wide: DynamoDB's items copy
  names across entities, so writes move together.

A request's draw and its reader's key are set when it begins (shop/__init__.py); outside a
request (the CLI, jobs, tests) each call draws for itself and no one is in the canary.
"""
from __future__ import annotations

import contextvars
import hashlib
import random
from dataclasses import dataclass
from typing import Callable

INLINE, SHADOW = "inline", "shadow"
MODES = (INLINE, SHADOW)
RAMP = (0, 1, 5, 25, 50, 100)  # the canary's usual steps; the guard steps back along them


@dataclass(frozen=True)
class Exposure:
    compare_percent: float = 100.0
    compare_mode: str = INLINE
    read_rollout_percent: float = 0.0

    def as_dict(self) -> dict:
        return {"compare_percent": self.compare_percent, "compare_mode": self.compare_mode,
                "read_rollout_percent": self.read_rollout_percent}

    def serves(self, phase: int | None) -> float:
        """The share of readers DynamoDB serves in `phase`: every one from phase 4 on, the
        canary's in phase 3, none before."""
        return 100.0 if phase in (4, 5) else self.read_rollout_percent if phase == 3 else 0.0


def step_below(percent: float) -> float:
    """The ramp's step under `percent` (50 -> 25, 7 -> 5, 1 -> 0)."""
    return max((s for s in RAMP if s < percent), default=0)


class _Reader:
    """One request's draws: a number in [0, 100) for sampling, and who reads (for the canary)."""
    __slots__ = ("draw", "_key", "_key_of", "_buckets")

    def __init__(self, key_of: Callable[[], str | None]):
        self.draw = random.random() * 100
        self._key_of = key_of
        self._key = None
        self._buckets: dict[str, float] = {}

    def bucket(self, salt: str) -> float | None:
        """The reader's place in [0, 100) for a rollout (None: no stable key, never in a canary
        below 100). The key is asked for only once a rollout between 0 and 100 needs it."""
        if salt not in self._buckets:
            if self._key is None:
                self._key = self._key_of() or ""
            self._buckets[salt] = bucket(self._key, salt) if self._key else None
        return self._buckets[salt]


_reader: contextvars.ContextVar[_Reader | None] = contextvars.ContextVar("shop_reader", default=None)


def begin(key_of: Callable[[], str | None]):
    """A request begins: one draw for it; `key_of()` names its reader when a canary asks."""
    return _reader.set(_Reader(key_of))


def end(token) -> None:
    _reader.reset(token)


def bucket(key: str, salt: str) -> float:
    """A stable place in [0, 100) for a key: the same key lands in the same place under one
    salt (sticky), keys spread evenly (the first 8 bytes of SHA-256)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 * 100


def sampled(percent: float) -> bool:
    """Whether this request's reads are compared at `percent`."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    reader = _reader.get()
    return (reader.draw if reader is not None else random.random() * 100) < percent


def in_rollout(percent: float, salt: str) -> bool:
    """Whether this request's reader is among the `percent` whose reads DynamoDB serves."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    reader = _reader.get()
    place = reader.bucket(salt) if reader is not None else None
    return place is not None and place < percent
