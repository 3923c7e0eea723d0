"""The shadow pool: comparisons that run after the request has its answer, bounded.

At most `workers` run at once and `queue` more wait; past that a comparison is dropped and
counted (shop_shadow_dropped_total), never queued without bound: a slow DynamoDB costs the
shadow pool its comparisons, never the requests their memory or their time.
"""
from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


class ShadowPool:
    def __init__(self, workers: int, queue: int):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shadow")
        self.capacity = workers + queue
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._idle = threading.Condition()
        self._running = 0

    def submit(self, job: Callable[[], None]) -> bool:
        """Run `job` on the pool, in a context of its own (nothing of the request's: its
        budget, its flags, its span); False when the pool is full (the job is dropped)."""
        if not self._slots.acquire(blocking=False):
            return False
        with self._idle:
            self._running += 1
        try:
            self._pool.submit(contextvars.Context().run, self._run, job)
        except RuntimeError:  # shut down
            self._done()
            return False
        return True

    def _run(self, job) -> None:
        try:
            job()
        finally:
            self._done()

    def _done(self) -> None:
        self._slots.release()
        with self._idle:
            self._running -= 1
            self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until no job is queued or running (tests, a graceful stop); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
