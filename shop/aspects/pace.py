"""How one route's dual reads run: inline (one store after the other), concurrent (DynamoDB on a
pool thread, abandoned at the timeout) or mysql-pooled (MySQL on a pool thread), chosen from what
each way has cost lately (Pace), while DynamoDB's recent reads came well in time (Recent)."""
from __future__ import annotations

import time

INLINE, CONCURRENT, MYSQL_POOLED = "inline", "concurrent", "mysql-pooled"
WAYS = (INLINE, CONCURRENT, MYSQL_POOLED)
SENT_WAIT_S = 0.05


class Recent:
    """A route's DynamoDB reads: the last WINDOW durations, and the reads still running. DynamoDB
    may run on the request's thread (which cannot abandon it) only while all of those came, or
    have so far run, within `limit`: when DynamoDB stalls, the reads already under way say so
    before any of them ends, and the next reads go back to the pool, which keeps the timeout.
    The reads under way are the whole runtime's (`running`, shared by every route's Recent): a
    stall one route's reads have run into sends every route to the pool, not one at a time."""

    WINDOW = 31
    __slots__ = ("samples", "limit", "running")

    def __init__(self, limit: float, running: dict | None = None):
        self.samples: list[float] = []
        self.limit = limit
        self.running: dict[object, float] = {} if running is None else running  # token -> when it began

    def start(self) -> object:
        token = object()
        self.running[token] = time.perf_counter()
        return token

    def finish(self, token) -> float:
        seconds = time.perf_counter() - self.running.pop(token)
        self.add(seconds)
        return seconds

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        if len(self.samples) > self.WINDOW:
            del self.samples[0]

    def all_within(self) -> bool:
        if len(self.samples) < self.WINDOW or max(self.samples) > self.limit:
            return False
        oldest = min(self.running.values(), default=None)
        return oldest is None or time.perf_counter() - oldest <= self.limit


class Pace:
    """How one route's dual reads run, chosen from what each way has cost lately.

    Three ways: inline (one store after the other), concurrent (DynamoDB on a pool thread,
    abandoned at the timeout) and mysql-pooled (MySQL on a pool thread, DynamoDB on the
    caller's). Overlapping the stores' waits pays a hand-off between threads; when the stores
    answer from this machine's own busy cores there is little wait to overlap, and which way
    is cheapest depends on the load. So each way keeps the durations of its recent dual reads,
    the cheapest median wins, and every EXPLORE-th call measures another way again (loads
    change); the way in use changes only when another is cheaper by MARGIN, so noise does not
    flip it back and forth. The ways that run DynamoDB on the caller's thread cannot abandon a
    late answer, so they are allowed only while DynamoDB's last WINDOW answers for this route,
    and the reads still under way on any route, came within INLINE_SHARE of the timeout
    (Recent). Races between threads updating these lists cost a sample at worst.
    """

    WINDOW, EXPLORE, INLINE_SHARE, MARGIN = Recent.WINDOW, 16, 0.25, 0.05

    __slots__ = ("costs", "medians", "calls", "dynamodb", "best")

    def __init__(self, settings, running: dict | None = None):
        self.costs = {way: [] for way in WAYS}
        self.medians = dict.fromkeys(WAYS)
        self.calls = 0
        self.best = CONCURRENT
        self.dynamodb = Recent(settings.dual_read_timeout_ms / 1000 * self.INLINE_SHARE, running)

    def choose(self, execution: str) -> str:
        if execution != "auto":
            return execution
        if not self.dynamodb.all_within():
            return CONCURRENT
        self.calls += 1
        unmeasured = [way for way in WAYS if self.medians[way] is None]
        if unmeasured:
            return unmeasured[0]
        cheapest = min(WAYS, key=self.medians.__getitem__)
        if self.medians[cheapest] < self.medians[self.best] * (1 - self.MARGIN):
            self.best = cheapest
        if self.calls % self.EXPLORE:
            return self.best
        others = [way for way in WAYS if way != self.best]
        return others[self.calls // self.EXPLORE % len(others)]

    def record(self, way: str, seconds: float) -> None:
        costs = self.costs[way]
        costs.append(seconds)
        if len(costs) > self.WINDOW:
            del costs[0]
        self.medians[way] = sorted(costs)[len(costs) // 2] if len(costs) >= 5 else None
