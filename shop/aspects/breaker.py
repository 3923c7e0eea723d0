"""A circuit breaker for secondary DynamoDB calls.

While DynamoDB keeps failing, waiting on its timeouts and retries would slow every MySQL
request; once open, secondary writes go straight to the repair log. After the cool-down
one probe call is let through: success closes the circuit, failure opens it again.
"""
from __future__ import annotations

import threading
import time

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(self, threshold: int = 5, cooldown: float = 30.0, clock=time.monotonic, on_change=None):
        """`on_change(state)` is told each transition, in order (under the lock: keep it quick)."""
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened_count = 0
        self._on_change = on_change or (lambda state: None)
        self._on_change(CLOSED)

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """May a DynamoDB call go ahead now? In half-open state, only one probe at a time."""
        with self._lock:
            if self._state == CLOSED:
                return True
            before = self._state
            if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown:
                self._state = HALF_OPEN
            allowed = self._state == HALF_OPEN and not self._probing
            if allowed:
                self._probing = True
            self._changed(before, self._state)
            return allowed

    def success(self) -> None:
        with self._lock:
            before = self._state
            self._state, self._failures, self._probing = CLOSED, 0, False
            self._changed(before, CLOSED)

    def failure(self) -> None:
        with self._lock:
            before = self._state
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.threshold:
                if self._state != OPEN:
                    self.opened_count += 1
                self._state, self._opened_at, self._probing = OPEN, self.clock(), False
            self._changed(before, self._state)

    def _changed(self, before: str, after: str) -> None:
        if before != after:
            self._on_change(after)

    def release(self) -> None:
        """A probe ended without telling success or failure (e.g. a domain error)."""
        with self._lock:
            self._probing = False
