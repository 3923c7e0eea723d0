"""The read path of the routing layer: one store, or both compared (Runtime's reads)."""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.events import emit, wanted

from ..inflight import REQUEST_SENT
from ..repositories.dynamodb.client import impatient
from . import budget, exposure
from . import flags as flags_mod
from .call import Call, Outcome, store_failed, timed_out
from .comparison import (ALARMING, MATCH, MISMATCH, PENDING_REPAIR, SKIPPED, TRANSIENT, Comparison, compare)
from .compare import in_flight, record_versions, records_of, same_version_differs
from .errors import DualReadMismatch
from .pace import CONCURRENT, INLINE, MYSQL_POOLED, SENT_WAIT_S, Pace
from .tally import ReadTally, tallied

log = logging.getLogger("shop.aspects")
tracer = trace.get_tracer("shop.aspects")


@dataclass(frozen=True)
class ReadPlan:
    """How one read runs (ReadPath._plan)."""
    authority: str           # the store whose answer it returns
    compare: bool = False    # the other store read too, and the two compared
    shadow: bool = False     # ... after the answer, on the shadow pool
    fallback: bool = False   # MySQL (written) answers when DynamoDB, the authority, fails
    trial: bool = False      # a browser's trial of dual reads: reported apart, never raised


class ReadPath:
    """Runtime's reads (router.py holds the state they use: settings, pools, breaker, stats)."""

    def _read(self, call: Call):
        plan = self._plan(call)
        if plan.authority != call.authority:
            call = replace(call, authority=plan.authority)
        if not plan.compare:
            if plan.authority == "mysql":
                return self._store("mysql", call.route, call.mysql).unwrap()
            if plan.fallback:  # MySQL, written first, can answer for a DynamoDB that does not
                return self._dynamodb_or_mysql(call)[0].unwrap()
            return self._store("dynamodb", call.route, call.dynamodb).unwrap()
        if plan.shadow:
            return self._read_then_shadow(call, plan)
        if (plan.authority == "mysql" or plan.fallback) and self._dynamodb_refused(call):
            self._compared(call, Comparison(call.name, SKIPPED), plan.trial)
            if plan.authority != "mysql":
                self._fell_back(call, "not asked")
            return self._store("mysql", call.route, call.mysql).unwrap()
        mysql, ddb, comparison = self._read_looking_again(call)
        self._judged(call, comparison, plan.trial)
        if comparison.outcome == MISMATCH and self.settings.dual_read_mode == "raise" and not plan.trial:
            # Raised only where the operator made inline dual reads the server's phase (behind
            # its gates); a browser trying dual reads on its own gets reports, never errors.
            raise DualReadMismatch(call.name, call.key, comparison.differences)
        if plan.authority == "mysql":
            return mysql.unwrap()
        if plan.fallback and store_failed(ddb.error) and mysql.error is None:
            self._fell_back(call, type(ddb.error).__name__)
            return mysql.unwrap()
        return ddb.unwrap()

    def _plan(self, call: Call) -> "ReadPlan":
        """How this read runs. The server's phase applies its per-entity exposure (sampling,
        the compare mode, the read canary); flags a test or the CLI set (use_flags), and a
        browser's trial of dual reads, always compare, inline."""
        flags = call.flags
        if not flags.dual_read:
            if flags.read_mysql:
                return ReadPlan("mysql")
            return ReadPlan("dynamodb", fallback=flags.write_mysql)
        if flags_mod.explicit() is not None or (flags_mod.browser() is not None and flags != self.server_flags()):
            return ReadPlan(flags.authority, compare=True, fallback=flags.write_mysql,
                            trial=self._browser_trial())
        # The server's phase (a browser asking for what the server does anyway is no trial).
        policy = self.exposure(call.entity)
        canary = exposure.in_rollout(policy.read_rollout_percent, self.rollout_salt())
        authority = "dynamodb" if canary else flags.authority
        compare = exposure.sampled(policy.compare_percent)
        return ReadPlan(authority, compare=compare, shadow=compare and policy.compare_mode == exposure.SHADOW,
                        fallback=authority == "dynamodb" and flags.write_mysql)

    def _judged(self, call: Call, comparison: Comparison, trial: bool) -> None:
        """A verdict recorded: counted, logged, traced; a server's mismatch also kept as the
        3 -> 4 gate's evidence (a browser's trial is kept apart)."""
        self._compared(call, comparison, trial)
        if comparison.outcome == MISMATCH and not trial:
            self._remember_mismatch(comparison)

    def _dynamodb_refused(self, call: Call) -> bool:
        """Whether DynamoDB is left out of this read: the request's time for it is spent, or the
        breaker is open (then DynamoDB not asked counts against it in the evidence). The budget
        first: the breaker's allow() may grant this call its one half-open probe, which must
        then be fed an outcome (a probe granted and never fed keeps it open)."""
        if budget.left(budget.READ, 1) <= 0:
            return True
        if not self.breaker.allow():
            self._skipped(call, "dynamodb")
            return True
        return False

    def _fell_back(self, call: Call, why: str) -> None:
        """MySQL answers a read DynamoDB should have served (it failed, was late, or was not
        asked): counted as a fallback."""
        self.stats.fallback(call.name)
        if call.entity and self._keeps_evidence():
            self.evidence.fallback(call.entity)
        if call.span.is_recording():
            call.span.set_attribute("shop.read.fallback", "mysql")
        emit(log, logging.WARNING, "read served by MySQL", {
            "event": "fallback", "operation": call.name, "error_type": why}, call.span)

    def _read_then_shadow(self, call: Call, plan: "ReadPlan"):
        """Shadow mode: the authority's answer returns at once; the other store's read and the
        comparison run afterwards on the shadow pool, in a trace of their own linked to this
        request's span (dropped and counted when the pool is full)."""
        if plan.authority == "mysql":
            served, store = self._store("mysql", call.route, call.mysql), "mysql"
        else:
            served, store = self._dynamodb_or_mysql(call)
        if store == plan.authority and not store_failed(served.error):
            if not self.shadow.submit(lambda: self._shadow_compare(call, served)):
                self.stats.dropped(call.entity or call.name)
                if self.evidence is not None and call.entity:
                    self.evidence.dropped(call.entity)
        return served.unwrap()

    def _shadow_compare(self, call: Call, served: Outcome) -> None:
        link = call.span.get_span_context()
        links = [trace.Link(link)] if link.is_valid else []
        with tracer.start_as_current_span(f"shadow {call.name}", kind=SpanKind.INTERNAL, links=links) as span:
            span.set_attributes({"shop.operation": call.name, "shop.compare.mode": exposure.SHADOW,
                                 "shop.read.authority": call.authority, **call.key_attributes})
            call = replace(call, span=span)
            if call.authority == "mysql":
                mysql = served
                if not self.breaker.allow():  # open: DynamoDB not asked, as inline reads do not ask it
                    self._skipped(call, "dynamodb")
                    self._compared(call, Comparison(call.name, SKIPPED))
                    return
                with impatient():
                    ddb = self._store("dynamodb", call.route, call.dynamodb)
                self._feed_breaker(ddb.error)
            else:
                ddb, mysql = served, self._store("mysql", call.route, call.mysql)
            authority, candidate = (mysql, ddb) if call.authority == "mysql" else (ddb, mysql)
            first = (mysql, ddb, compare(call.route, mysql, ddb, authority, candidate))
            _, _, comparison = self._read_looking_again(call, first)
            self._judged(call, comparison, False)

    def _read_looking_again(self, call: Call, first=None) -> tuple[Outcome, Outcome, Comparison]:
        """Both stores read and compared; a difference read again before it is called a mismatch.

        A write between its MySQL commit and its DynamoDB write looks like a difference for a
        moment; a real divergence is still there a little later. Two rechecks, 1x then 4x; then,
        for a difference that stays, one last look once any write in flight has met its dual-write
        deadline (by then it landed, or it is journaled: `pending_repair`). At the last look, a
        record written again and again (DynamoDB holding at least what MySQL had at the first
        look) is writes in flight, not a mismatch. Each look's wait on DynamoDB is spent from the
        request's budget (a stalled DynamoDB times out the first and ends the looking)."""
        first_read = time.monotonic()
        mysql, ddb, comparison = first or self._read_both(call)
        first_versions = record_versions(mysql.value) if comparison.outcome == MISMATCH else {}
        recheck = self.settings.dual_read_recheck_ms / 1000
        last_look = False
        for pause in ((1, 4, None) if recheck else ()):
            if comparison.outcome != MISMATCH:
                break
            if pause is None:
                # Past the deadline already (a loaded machine): the last look is taken at once.
                pause_s = max(0.0, self.settings.dual_write_timeout_ms / 1000 - (time.monotonic() - first_read))
                last_look = True
            else:
                pause_s = pause * recheck
            time.sleep(pause_s)
            mysql, ddb, comparison = self._read_both(call)
            if comparison.outcome == MATCH:
                comparison = comparison.but(TRANSIENT)
        if comparison.outcome != MISMATCH:
            return mysql, ddb, comparison
        if last_look and in_flight(first_versions, record_versions(mysql.value), record_versions(ddb.value)) \
                and not same_version_differs(mysql.value, ddb.value):
            return mysql, ddb, comparison.but(TRANSIENT)
        if self._pending(call, mysql, ddb, comparison):
            return mysql, ddb, comparison.but(PENDING_REPAIR)  # a known divergence, waiting for its replay
        return mysql, ddb, comparison

    def pace(self, route_name: str):
        """How the route's dual reads run; every route's Pace sees the reads under way on all."""
        return self._paces.get(route_name) or self._paces.setdefault(
            route_name, Pace(self.settings, self._ddb_reads_running))

    def _dynamodb_or_mysql(self, call: Call) -> tuple[Outcome, str]:
        """Phase 4's read (and the canary's): DynamoDB's answer, within the request's budget;
        when DynamoDB fails or is late, MySQL's (written first in phase 4, it holds every
        acknowledged write), counted as a fallback. On the request's thread while DynamoDB's
        recent reads came well in time (as inline dual reads), else on the pool, abandoned at
        the budget. Returns the outcome and the store that gave it."""
        pace = self.pace(call.name)
        timeout = budget.left(budget.READ, self.settings.dual_read_timeout_ms / 1000)
        if self._dynamodb_refused(call):  # not asked: nothing to tell the breaker
            ddb = timed_out()
        else:
            with budget.waiting(budget.READ):
                if pace.dynamodb.all_within() and timeout >= self.settings.dual_read_timeout_ms / 1000:
                    ddb = self._caller_dynamodb(call, pace)
                else:
                    ddb = self._pooled_dynamodb(call, pace, timeout)
            self._feed_breaker(ddb.error)
        if not store_failed(ddb.error):
            return ddb, "dynamodb"
        self._fell_back(call, type(ddb.error).__name__)
        return self._store("mysql", call.route, call.mysql), "mysql"

    def _pooled_dynamodb(self, call: Call, pace, timeout) -> Outcome:
        counted = self._tally(call)

        def timed_ddb():
            running = pace.dynamodb.start()
            try:
                with tallied(counted):
                    return self._store("dynamodb", call.route, call.dynamodb)
            finally:
                pace.dynamodb.finish(running)
        future = self._pool.submit(contextvars.copy_context().run, timed_ddb)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            return self._abandoned(counted, timeout)

    def _tally(self, call: Call, hold: bool = False) -> ReadTally:
        """How this DynamoDB read is counted once, whether its caller waits for it or not."""
        return ReadTally(lambda seconds, failed: self._record_read(call.entity, "dynamodb", seconds, failed), hold)

    @staticmethod
    def _abandoned(counted: ReadTally, waited_s: float) -> Outcome:
        """DynamoDB's read given up at its time limit: a failure now, unless its answer was
        counted first (an answer coming later is not counted again)."""
        counted.settle(waited_s, late=True)
        return timed_out()

    def _read_both(self, call: Call) -> tuple[Outcome, Outcome, Comparison]:
        if call.authority == "dynamodb" and not call.flags.write_mysql:
            # DynamoDB is the only store written (phase 5, a browser's trial of dual reads): its
            # answer is the read's, waited for as any phase 5 read waits, never given up at the
            # dual-read limit (that limit is for the store a read can do without).
            mysql, ddb = self._store("mysql", call.route, call.mysql), self._store("dynamodb", call.route, call.dynamodb)
            self._feed_breaker(ddb.error)
            return mysql, ddb, compare(call.route, mysql, ddb, ddb, mysql)
        pace = self.pace(call.name)
        timeout = budget.left(budget.READ, self.settings.dual_read_timeout_ms / 1000)
        # DynamoDB on the request's thread cannot be abandoned: only with the whole limit left
        full = timeout * 1000 >= self.settings.dual_read_timeout_ms
        way = pace.choose(self.dual_read_execution) if full else CONCURRENT
        start = time.perf_counter()
        with budget.waiting(budget.READ):
            if way == INLINE:
                mysql, ddb = self._read_inline(call, pace)
            elif way == MYSQL_POOLED:
                mysql, ddb = self._read_mysql_pooled(call, pace)
            else:
                mysql, ddb = self._read_concurrent(call, pace, timeout)
        if self.dual_read_execution == "auto":  # a fixed way measures nothing for the choice
            pace.record(way, time.perf_counter() - start)
        authority, candidate = (mysql, ddb) if call.authority == "mysql" else (ddb, mysql)
        self._feed_breaker(ddb.error)
        return mysql, ddb, compare(call.route, mysql, ddb, authority, candidate)

    def _browser_trial(self) -> bool:
        """Dual reads a browser chose while the server's phase does not dual-read."""
        return (flags_mod.explicit() is None and flags_mod.browser() is not None
                and not self.server_flags().dual_read)

    def _pending(self, call: Call, mysql: Outcome, ddb: Outcome, comparison: Comparison) -> bool:
        """Whether the journal holds an open entry for what this read returns: its entity; for
        a listing whose records differ, one of the records either store returned; for an
        aggregate (stats, a summary, a listing's total), any entity of its kind: a record
        written to one store only changes the other's count though it is on another page."""
        entity = self.entity_of(call.route.repository)
        if entity is None:
            return False
        if entity.key in call.route.key and entity.key in call.arguments:
            ask = lambda: self.journal.is_pending(entity.name, call.arguments[entity.key])  # noqa: E731
        else:
            ids = _ids(mysql, ddb)
            if ids and all(d.path.startswith("items[") for d in comparison.differences):
                ask = lambda: self.journal.is_pending(entity.name, among=ids)  # noqa: E731
            else:
                ask = lambda: self.journal.is_pending(entity.name)  # noqa: E731
        # The journal towards MySQL is in DynamoDB: asked on the pool, within the request's budget
        # (unknown counts as not pending: the mismatch stands).
        future = self._pool.submit(contextvars.copy_context().run, ask)
        try:
            with budget.waiting(budget.READ):
                return future.result(timeout=budget.left(budget.READ, self.settings.dual_read_timeout_ms / 1000))
        except FutureTimeout:
            future.cancel()
            return False

    def _remember_mismatch(self, comparison: Comparison) -> None:
        if self.phase is not None:
            self.phase.store.record_mismatch(comparison.operation, MISMATCH, comparison.attributes,
                                             self.phase.current().label)

    def _read_concurrent(self, call: Call, pace, timeout=None) -> tuple[Outcome, Outcome]:
        """DynamoDB on the pool, MySQL on the caller's thread once DynamoDB's first request is
        on the wire (shop.inflight); DynamoDB waited for at most the dual-read timeout (or what
        the request has left of it)."""
        sent, counted = threading.Event(), self._tally(call)

        def timed_ddb():
            running = pace.dynamodb.start()
            token = REQUEST_SENT.set(sent)
            try:
                with tallied(counted):
                    return self._store("dynamodb", call.route, call.dynamodb)
            finally:
                REQUEST_SENT.reset(token)
                sent.set()
                pace.dynamodb.finish(running)
        timeout = self.settings.dual_read_timeout_ms / 1000 if timeout is None else timeout
        future = self._pool.submit(contextvars.copy_context().run, timed_ddb)
        # Building a request takes a millisecond or two; a pool with no free thread (DynamoDB
        # stalling every read) must not hold MySQL back: after SENT_WAIT_S, read MySQL anyway.
        sent.wait(min(timeout, SENT_WAIT_S))
        mysql = self._store("mysql", call.route, call.mysql)
        try:
            ddb = future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            ddb = self._abandoned(counted, timeout)
        return mysql, ddb

    def _read_mysql_pooled(self, call: Call, pace) -> tuple[Outcome, Outcome]:
        """MySQL on the pool, DynamoDB on the caller's thread: the caller does the heavier Python
        work (building and parsing DynamoDB's request) while MySQL's short query waits on its
        socket. Like inline reads, chosen only while DynamoDB answers well within the timeout.
        MySQL never queues: if no pool thread has taken it by the time DynamoDB answered, it
        runs here."""
        future = self._pool.submit(contextvars.copy_context().run, self._store, "mysql", call.route, call.mysql)
        ddb = self._caller_dynamodb(call, pace)
        mysql = self._store("mysql", call.route, call.mysql) if future.cancel() else future.result()
        return mysql, ddb

    def _caller_dynamodb(self, call: Call, pace) -> Outcome:
        """DynamoDB on the caller's thread, which nothing can abandon: its client makes one
        attempt whose waits end at the timeout (impatient), and an answer later than the timeout
        still counts as a timeout (in the evidence too) and sends the route back to concurrent
        reads (Pace)."""
        running, counted = pace.dynamodb.start(), self._tally(call, hold=True)
        try:
            with impatient(), tallied(counted):
                ddb = self._store("dynamodb", call.route, call.dynamodb)
        finally:
            took = pace.dynamodb.finish(running)
            late = took * 1000 > self.settings.dual_read_timeout_ms
            counted.settle(took, late)
        return timed_out() if late else ddb

    def _read_inline(self, call: Call, pace) -> tuple[Outcome, Outcome]:
        """Both on the caller's thread, one after the other: no hand-off between threads. Chosen
        only while DynamoDB's recent answers came well within the timeout (Pace); an answer later
        than the timeout still counts as a timeout, and sends the route back to concurrent reads."""
        return self._store("mysql", call.route, call.mysql), self._caller_dynamodb(call, pace)

    def _compared(self, call: Call, comparison: Comparison, trial: bool = False) -> None:
        outcome, names, span = comparison.outcome, comparison.attributes, call.span
        if trial:
            self.stats.trial_comparison(call.name, outcome)
        else:
            self.stats.comparison(call.name, outcome, names)
            if call.entity is not None:
                self.stats.entity_comparison(call.entity, outcome)
                if self._keeps_evidence():
                    self.evidence.compared(call.entity, outcome)
        # A match is recorded on the routed span (below); a span of its own is kept for what an
        # operator looks for: mismatches, timeouts, failures. Under a span not recorded, it
        # would not be recorded either.
        level = logging.WARNING if outcome in ALARMING else logging.INFO
        fields = {"event": "compare", "operation": call.name, "outcome": outcome, "attributes": names,
                  "key": call.key_text, **({"trial": True} if trial else {})}
        if span.is_recording() and outcome != MATCH:
            with tracer.start_as_current_span(f"compare {call.name}") as cspan:
                if cspan.is_recording():
                    cspan.set_attributes({"shop.compare.outcome": outcome, "shop.operation": call.name,
                                          "shop.compare.mismatched_attributes": names})
                    if outcome == MISMATCH:
                        cspan.set_status(Status(StatusCode.ERROR, "dual read mismatch"))
                emit(log, level, "dual read compared", fields, cspan)
        elif wanted(log, level, span):
            emit(log, level, "dual read compared", fields, span)
        if span.is_recording():
            span.set_attribute("shop.compare.outcome", outcome)


def _ids(*outcomes) -> set[int]:
    """The ids of the records reads returned (a record, a list of them, or a page)."""
    return {int(r.id) for outcome in outcomes for r in records_of(outcome.value) if isinstance(getattr(r, "id", None), int)}
