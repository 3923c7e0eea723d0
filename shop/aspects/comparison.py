"""A dual read's verdict: the two stores' answers compared, and what came of it. Printable, so a
newcomer (or a test failing) reads it plainly:

    ProductRepository.get_by_id: mismatch
      price: changed: MySQL='21.50' DynamoDB='19.90'
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import StoreUnavailableError
from .call import Outcome, store_failed
from .compare import Difference, attribute_names, diff, own

# What a dual read can come to. Only `mismatch` is a disagreement; the others are counted.
MATCH, MISMATCH, TRANSIENT, PENDING_REPAIR = "match", "mismatch", "transient", "pending_repair"
TIMEOUT, CANDIDATE_ERROR, AUTHORITY_ERROR, SKIPPED = "timeout", "candidate_error", "authority_error", "skipped"
ALARMING = (MISMATCH, CANDIDATE_ERROR, TIMEOUT, AUTHORITY_ERROR)


@dataclass(frozen=True)
class Comparison:
    operation: str
    outcome: str
    differences: tuple = field(default_factory=tuple)

    @property
    def attributes(self) -> list[str]:
        return attribute_names(self.differences)

    def but(self, outcome: str) -> "Comparison":
        """The same differences, seen otherwise (a recheck found them gone, a journal explains them)."""
        return Comparison(self.operation, outcome, self.differences)

    def __str__(self) -> str:
        lines = [f"{self.operation}: {self.outcome}"]
        lines += [f"  {d.describe()}" for d in self.differences]
        return "\n".join(lines)


def compare(route, mysql: Outcome, ddb: Outcome, authority: Outcome, candidate: Outcome) -> Comparison:
    """Availability failures are not disagreements: the authority's failure fails the call; the
    candidate's is counted and the authority's answer stands. Both raising the same domain error
    is a match."""
    if store_failed(authority.error):
        return Comparison(route.name, AUTHORITY_ERROR)
    if isinstance(candidate.error, TimeoutError):
        return Comparison(route.name, TIMEOUT)
    if isinstance(candidate.error, StoreUnavailableError):
        return Comparison(route.name, CANDIDATE_ERROR)
    if mysql.error or ddb.error:
        if type(mysql.error) is type(ddb.error) and str(mysql.error) == str(ddb.error):
            return Comparison(route.name, MATCH)
        return Comparison(route.name, MISMATCH, (Difference("", "error", mysql.describe(), ddb.describe()),))
    if route.joins:  # the whole products a cart or an order joins in are compared by their own reads
        differences = diff(own(mysql.value), own(ddb.value), route.unordered)
    else:
        differences = diff(mysql.value, ddb.value, route.unordered)
    return Comparison(route.name, MISMATCH if differences else MATCH, tuple(differences))
