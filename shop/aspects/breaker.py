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
    def __init__(self, threshold: int = 5, cooldown: float = 30.0, clock=time.monotonic):
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.opened_count = 0

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
            if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown:
                self._state = HALF_OPEN
            if self._state == HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._state, self._failures, self._probing = CLOSED, 0, False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.threshold:
                if self._state != OPEN:
                    self.opened_count += 1
                self._state, self._opened_at, self._probing = OPEN, self.clock(), False

    def release(self) -> None:
        """A probe ended without telling success or failure (e.g. a domain error)."""
        with self._lock:
            self._probing = False
