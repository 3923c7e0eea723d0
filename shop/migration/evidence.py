"""What the reads of each entity showed, kept where every worker's gates and guard read it.

Each worker counts in memory, per entity: reads per store (answered, failed) and their
latencies, dual-read verdicts, shadow comparisons dropped, fallbacks to MySQL. A thread of the
worker (shop.migration.guard.Watch) adds its counts every second to MySQL's
`migration_evidence`, one row per (5-second slot, phase document version, entity, metric), so a
window is a sum over rows, whoever served the reads. Each read is counted under the version of
the phase document it was served by: a window "since this step" is the rows of the step's
version and later, exact whatever the clocks say or however late a worker saw the step (what a
worker served under the step before is that step's evidence). The gates read windows since a
phase or a step began; the guard reads the last minute of them. Rows older than
SHOP_EVIDENCE_RETENTION_H are removed.

MySQL holds it because it is written in every phase that has evidence to gather (1-4); in
phase 5 nothing is counted here (nothing judges it, and MySQL may be retired): /metrics still
shows the reads.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ..aspects.comparison import MATCH, MISMATCH, PENDING_REPAIR, TRANSIENT
from ..aspects.stats import quantile
from .state import now

log = logging.getLogger("shop.migration")

SLOT_S = 5
BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, math.inf)
VERDICTS = (MATCH, TRANSIENT, MISMATCH, PENDING_REPAIR)  # the comparisons that reached a verdict
STORES = ("mysql", "dynamodb")


def _bound(ms: float) -> str:
    return next(("inf" if math.isinf(b) else str(b)) for b in BOUNDS_MS if ms <= b)


@dataclass
class EntityEvidence:
    """One entity's counts over a window."""
    entity: str
    counts: dict = field(default_factory=lambda: defaultdict(int))

    def n(self, metric: str) -> int:
        return int(self.counts.get(metric, 0))

    @property
    def comparisons(self) -> dict[str, int]:
        return {m.split(".", 1)[1]: int(v) for m, v in self.counts.items() if m.startswith("compare.") and v}

    @property
    def compared(self) -> int:
        """Comparisons that reached a verdict (a timeout or a store's failure is not one)."""
        return sum(self.n(f"compare.{v}") for v in VERDICTS)

    @property
    def mismatches(self) -> int:
        return self.n(f"compare.{MISMATCH}")

    @property
    def consistency(self) -> float | None:
        return None if not self.compared else 1 - self.mismatches / self.compared

    def reads(self, store: str) -> int:
        """Reads the store answered, failed, or was not asked for (its breaker open)."""
        return sum(self.n(f"read.{store}.{how}") for how in ("ok", "error", "skipped"))

    def error_rate(self, store: str) -> float | None:
        total = self.reads(store)
        return None if not total else (self.n(f"read.{store}.error") + self.n(f"read.{store}.skipped")) / total

    def percentile_ms(self, store: str, q: float) -> float | None:
        cumulative, running = [], 0
        for b in BOUNDS_MS:
            running += self.n(f"ms.{store}.{'inf' if math.isinf(b) else b}")
            cumulative.append((b / 1000, running))
        return None if not running else round(quantile(q, cumulative) * 1000, 1)

    @property
    def dropped(self) -> int:
        return self.n("shadow.dropped")

    @property
    def fallbacks(self) -> int:
        return self.n("fallback")

    def as_dict(self) -> dict:
        out = {"comparisons": self.comparisons, "compared": self.compared, "mismatches": self.mismatches,
               "consistency": self.consistency, "shadow_dropped": self.dropped, "fallbacks": self.fallbacks}
        for store in STORES:
            out[store] = {"reads": self.reads(store), "error_rate": self.error_rate(store),
                          "p50_ms": self.percentile_ms(store, 0.5), "p99_ms": self.percentile_ms(store, 0.99)}
        return out


class EvidenceLog:
    """The counts of this worker not yet added to MySQL, and the windows every worker's add up to."""

    RETENTION_CHECK_S = 600

    def __init__(self, db, retention_h: int = 48, version_of=lambda: 0):
        self.db, self.retention = db, timedelta(hours=retention_h)
        self.version_of = version_of  # the phase document version reads are served under now
        self._counts: dict[tuple[int, int, str, str], int] = defaultdict(int)  # (slot, version, entity, metric)
        self._lock = threading.Lock()
        self._pruned_at = 0.0
        self._failing = False

    # --- counting (on the request's path: a dict increment under a lock) --------------------

    def _key(self) -> tuple[int, int]:
        """When (its slot) and under which phase document it happened, whenever it is flushed."""
        return int(time.time()) // SLOT_S * SLOT_S, self.version_of()

    def _add(self, entity: str, metric: str, n: int = 1) -> None:
        slot, version = self._key()
        with self._lock:
            self._counts[(slot, version, entity, metric)] += n

    def read(self, entity: str, store: str, seconds: float, failed: bool) -> None:
        slot, version = self._key()
        with self._lock:
            self._counts[(slot, version, entity, f"read.{store}.{'error' if failed else 'ok'}")] += 1
            self._counts[(slot, version, entity, f"ms.{store}.{_bound(seconds * 1000)}")] += 1

    def skipped(self, entity: str, store: str) -> None:
        """A read the store was not asked for (its breaker open): a failure of the store's."""
        self._add(entity, f"read.{store}.skipped")

    def compared(self, entity: str, outcome: str) -> None:
        self._add(entity, f"compare.{outcome}")

    def dropped(self, entity: str) -> None:
        self._add(entity, "shadow.dropped")

    def fallback(self, entity: str) -> None:
        self._add(entity, "fallback")

    # --- keeping ------------------------------------------------------------------------------

    def flush(self) -> int:
        """Add this worker's counts to MySQL's slots; kept for the next flush if MySQL fails."""
        with self._lock:
            counts, self._counts = self._counts, defaultdict(int)
        if not counts:
            return 0
        rows = [(_utc(slot), version, entity, metric, n) for (slot, version, entity, metric), n in counts.items() if n]
        try:
            with self.db.cursor(write=True) as cur:
                cur.executemany("INSERT INTO migration_evidence (slot, version, entity, metric, n)"
                                " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE n = n + VALUES(n)", rows)
                if time.monotonic() - self._pruned_at > self.RETENTION_CHECK_S:
                    cur.execute("DELETE FROM migration_evidence WHERE slot < %s", (now() - self.retention,))
                    self._pruned_at = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - MySQL down or retired: counted again next time
            with self._lock:
                for key, n in counts.items():
                    self._counts[key] += n
            if not self._failing:
                log.warning("evidence not recorded", extra={"event": "evidence", "error_type": type(exc).__name__})
            self._failing = True
            return 0
        self._failing = False
        return len(rows)

    def window(self, since: datetime, version: int = 0) -> dict[str, EntityEvidence]:
        """{entity: its counts} of every worker, from the slot holding `since` on, served under
        phase document `version` or later."""
        with self.db.cursor() as cur:
            cur.execute("SELECT entity, metric, SUM(n) AS n FROM migration_evidence WHERE slot >= %s AND version >= %s"
                        " GROUP BY entity, metric", (_slot(since), version))
            rows = cur.fetchall()
        out: dict[str, EntityEvidence] = {}
        for r in rows:
            out.setdefault(r["entity"], EntityEvidence(r["entity"])).counts[r["metric"]] = int(r["n"])
        return out

    def at_steps(self, state, names, floor: datetime | None = None) -> dict[str, EntityEvidence]:
        """{entity: its evidence since its current step began (PhaseState.step_of)}, and since
        `floor` when that is later: one window per distinct step."""
        by_step: dict = {}
        for name in names:
            since, version = state.step_of(name)
            start = max(floor, since) if floor and since else since or floor or _EPOCH
            by_step.setdefault((start, version), []).append(name)
        out = {}
        for (start, version), group in by_step.items():
            found = self.window(start, version)
            out.update({e: found[e] for e in group if e in found})
        return out


_EPOCH = datetime(2000, 1, 1)  # "since ever" for a step with no start (nothing stored yet)


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


def _slot(at: datetime) -> datetime:
    return at.replace(microsecond=0) - timedelta(seconds=at.second % SLOT_S)
