"""The write path of the routing layer: MySQL first and DynamoDB's copy after it, DynamoDB first
while MySQL catches up, or one store alone with a journal entry for the other (Runtime's writes)."""
from __future__ import annotations

import contextvars
import logging
from concurrent.futures import TimeoutError as FutureTimeout

from observability.events import emit

from ..errors import NotFoundError
from ..repositories.dynamodb.errors import Diverged, Superseded
from . import budget
from .call import Call, Outcome
from .errors import SecondaryWriteFailed
from .table import DEFAULT_TOUCHES, MIRROR

log = logging.getLogger("shop.aspects")

# What a mirror meets while the backfill has not run: a row, or its parent, DynamoDB does not hold yet.
MISSING = (NotFoundError, Diverged)


class WritePath:
    """Runtime's writes (router.py holds the state they use: settings, pools, breaker, journal)."""

    def _write(self, call: Call):
        flags, route = call.flags, call.route
        if not flags.write_mysql:
            result = self._store("dynamodb", route, call.dynamodb).unwrap()
            # MySQL lacks this write until the reverse copy replays it (leaving phase 5).
            self._journal(call, self.journal.to_mysql, result, "written to DynamoDB only")
            return result
        if flags.write_ddb and self.mysql_behind() and self._touches_behind(call):
            return self._write_dynamodb_first(call)
        result = self._store("mysql", route, call.mysql).unwrap()
        if flags.write_ddb:
            self._secondary_write(call, result)
        elif route.deletes and result:
            # DynamoDB may hold an earlier copy: only a recorded deletion may remove it there.
            self._journal(call, self.journal.to_dynamodb, result, "deleted while DynamoDB was not written")
        return result

    def _touches_behind(self, call: Call) -> bool:
        """Whether this write touches an entity MySQL lacks writes of (any of a kind, for a
        write whose entities are known only once it ran). Unknown counts as touching."""
        try:
            behind = self.journal.behind()
        except Exception:  # noqa: BLE001 - DynamoDB unreadable: its write will say so clearly
            return True
        if not behind:
            return False
        kinds = {entity for entity, _ in behind}
        return any((entity, entity_id) in behind if entity_id is not None else entity in kinds
                   for entity, entity_id in (call.route.touches or DEFAULT_TOUCHES)(call.arguments))

    def _write_dynamodb_first(self, call: Call):
        """MySQL's row may be stale: DynamoDB (holding every write) takes this one first, then
        what it touched is copied back to MySQL under the entity's lock (shop.migration.catchup)."""
        if call.span.is_recording():
            call.span.set_attribute("shop.write.order", "dynamodb-first")
        result = self._store("dynamodb", call.route, call.dynamodb).unwrap()
        targets = self._journal(call, self.journal.to_mysql, result,
                                "written to DynamoDB first while MySQL catches up")
        if self.catch_up is not None and targets:
            self.catch_up(targets)
        return result

    def _journal(self, call: Call, direction, result, why) -> list:
        """Record a write that reached one store; the write itself stands whatever happens here
        (verify still finds the entity if the record is lost). Returns the entities it concerns."""
        route = call.route
        if route.repairs is None or (route.deletes and not result):
            return []
        targets = route.repairs(call.arguments, result)
        fields = {"event": "journal", "operation": route.name, "direction": direction,
                  "targets": [f"{e}:{i}" for e, i in targets]}
        try:
            count = self.journal.record(direction, targets, route.name, why, deleted=route.deletes)
        except Exception as exc:  # noqa: BLE001
            emit(log, logging.ERROR, "write not journaled", {**fields, "error_type": type(exc).__name__}, call.span)
            return targets
        emit(log, logging.INFO, "write recorded for the other store",
             {**fields, "deleted": route.deletes, "recorded": count}, call.span)
        return targets

    def _secondary_write(self, call: Call, result) -> None:
        """DynamoDB's half of a dual write, after MySQL's committed: MySQL's resulting record is
        copied (MIRROR), and kept only if newer than DynamoDB's (Superseded otherwise: a later
        write's copy landed first, nothing to do). Whatever it could not apply is recorded for
        repair, which copies MySQL's state again: quietly while the backfill has not run yet
        (DynamoDB cannot hold what was never copied), as a divergence after it."""
        route = call.route
        targets = route.repairs(call.arguments, result) if route.repairs else []
        deadline = budget.left(budget.WRITE, self.settings.dual_write_timeout_ms / 1000)
        if deadline <= 0:  # before allow(), which may grant a probe that must then be fed
            self._record_repair(call, targets, "the request's time for DynamoDB writes was spent")
            return
        if not self.breaker.allow():
            self._record_repair(call, targets, "circuit open: DynamoDB was failing")
            return
        awaiting = self._awaiting_backfill()
        outcome = self._mirror(call, result, deadline, MISSING if awaiting else ())
        error = outcome.error
        self._feed_breaker(None if isinstance(error, (Superseded, Diverged)) else error)
        if isinstance(error, Superseded):
            self.stats.mirror(route.name, "superseded")
            if call.span.is_recording():
                call.span.add_event("mirror.superseded", {"shop.operation": route.name, "held": str(error.held),
                                                          "offered": str(error.offered)})
            return
        if isinstance(error, Diverged):
            targets = error.targets
        elif error is None and route.ids == MIRROR and result is not None and outcome.value is None:
            error = LookupError("DynamoDB had no record to update")  # a divergence found by writing
        if error is None:
            self.stats.mirror(route.name, "applied")
        elif awaiting and isinstance(error, MISSING + (LookupError,)):
            self.stats.mirror(route.name, "awaiting_backfill")
            self.journal.record(self.journal.to_dynamodb, targets, route.name,
                                f"awaiting the backfill: {type(error).__name__}: {error}", deleted=route.deletes,
                                level=logging.INFO)
        else:
            self.stats.mirror(route.name, "diverged" if isinstance(error, (Diverged, LookupError)) else "failed")
            self._record_repair(call, targets, error)
            if self.settings.dual_write_policy == "raise":
                raise SecondaryWriteFailed(f"{route.name} was saved in MySQL but not in DynamoDB; "
                                           "it is recorded for repair") from error

    def _mirror(self, call: Call, result, deadline: float, expected: tuple) -> Outcome:
        """DynamoDB's write on the write pool, waited for until the deadline. A write past it
        may still land later; the repair entry makes the outcome right either way."""
        extra = {"mirror_of": result} if call.route.ids == MIRROR else {}
        future = self._writes.submit(contextvars.copy_context().run, self._store, "dynamodb", call.route,
                                     lambda: call.dynamodb(**extra), expected)
        try:
            with budget.waiting(budget.WRITE):
                return future.result(timeout=deadline)
        except FutureTimeout:
            return Outcome(error=TimeoutError("DynamoDB write exceeded the dual-write deadline"))

    def _awaiting_backfill(self) -> bool:
        """Whether DynamoDB may still lack rows MySQL had before dual writes began: no backfill
        has completed since they began (the phase document's marks)."""
        if self.phase is None:
            return False
        doc = self.phase.current().doc
        done = doc.get("marks", {}).get("backfill", {}).get("completed_at")
        since = doc.get("dual_write_since")
        return not done or bool(since and done < since)

    def _record_repair(self, call: Call, targets, error) -> None:
        count = self.journal.record(self.journal.to_dynamodb, targets, call.name, error,
                                    deleted=call.route.deletes)
        self.stats.repair(call.name, count)
        if call.span.is_recording():  # the repair log adds one event per target
            call.span.set_attribute("shop.repair.recorded", count)
