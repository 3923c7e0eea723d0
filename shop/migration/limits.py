"""The limits an entity's reads must keep: what the guard steps back on and a canary step up is
gated on. Over a window of evidence (shop.migration.evidence), with at least `min_samples` of
what each limit divides by (fewer say nothing either way):

- mismatch rate: unexplained mismatches among the comparisons that reached a verdict
  (SHOP_LIMIT_MISMATCH_RATE; transients rechecked and journaled divergences are not mismatches);
- DynamoDB's error rate: reads it failed, answered too late, or was not asked for because its
  breaker was open (SHOP_LIMIT_ERROR_RATE);
- DynamoDB's latency: its p99 above SHOP_LIMIT_LATENCY_RATIO times MySQL's p99 over the same
  window, and above SHOP_LIMIT_LATENCY_FLOOR_MS (a ratio alone would fire on a 3 ms p99 against
  MySQL's 0.5 ms), once there are at least P99_MIN_READS timed reads: the p99 of fewer is their
  slowest one, and one pause (a collection, a cold connection) would step an entity back.
"""
from __future__ import annotations

from dataclasses import dataclass

from .evidence import EntityEvidence

MISMATCH_RATE, ERROR_RATE, LATENCY = "mismatch_rate", "error_rate", "latency"
P99_MIN_READS = 100


@dataclass(frozen=True)
class Verdict:
    limit: str
    ok: bool | None   # None: too few samples to say
    detail: str


@dataclass(frozen=True)
class Limits:
    mismatch_rate: float
    error_rate: float
    latency_ratio: float
    latency_floor_ms: float
    min_samples: int

    @classmethod
    def of(cls, settings, min_samples: int | None = None) -> "Limits":
        return cls(settings.limit_mismatch_rate, settings.limit_error_rate, settings.limit_latency_ratio,
                   settings.limit_latency_floor_ms,
                   settings.guard_min_samples if min_samples is None else min_samples)

    def verdicts(self, ev: EntityEvidence) -> list[Verdict]:
        return [self._mismatches(ev), *self.dynamodb(ev)]

    def dynamodb(self, ev: EntityEvidence) -> tuple[Verdict, Verdict]:
        """DynamoDB's own limits: its error rate, then its latency."""
        return self._errors(ev), self._latency(ev)

    def broken(self, ev: EntityEvidence) -> list[Verdict]:
        return [v for v in self.verdicts(ev) if v.ok is False]

    def _mismatches(self, ev: EntityEvidence) -> Verdict:
        n, bad = ev.compared, ev.mismatches
        if n < self.min_samples:
            return Verdict(MISMATCH_RATE, None, f"{n} comparisons, fewer than {self.min_samples}")
        rate = bad / n
        return Verdict(MISMATCH_RATE, rate <= self.mismatch_rate,
                       f"{bad} mismatches of {n} comparisons ({rate:.2%}; limit {self.mismatch_rate:.2%})")

    def _errors(self, ev: EntityEvidence) -> Verdict:
        n = ev.reads("dynamodb")
        if n < self.min_samples:
            return Verdict(ERROR_RATE, None, f"{n} DynamoDB reads, fewer than {self.min_samples}")
        rate = ev.error_rate("dynamodb") or 0.0
        return Verdict(ERROR_RATE, rate <= self.error_rate,
                       f"DynamoDB failed {rate:.2%} of {n} reads (limit {self.error_rate:.2%})")

    def _latency(self, ev: EntityEvidence) -> Verdict:
        answered, need = ev.n("read.dynamodb.ok") + ev.n("read.dynamodb.error"), max(self.min_samples, P99_MIN_READS)
        if answered < need:
            return Verdict(LATENCY, None, f"{answered} timed DynamoDB reads, fewer than the {need} a p99 needs")
        ddb, mysql = ev.percentile_ms("dynamodb", 0.99), ev.percentile_ms("mysql", 0.99)
        limit = max(self.latency_floor_ms, self.latency_ratio * mysql if mysql else 0.0)
        against = f"{self.latency_ratio:g}x MySQL's {mysql} ms, at least {self.latency_floor_ms:g} ms" if mysql \
            else f"{self.latency_floor_ms:g} ms (no MySQL reads to compare with)"
        return Verdict(LATENCY, ddb <= limit, f"DynamoDB p99 {ddb} ms (limit {limit:g} ms: {against})")
