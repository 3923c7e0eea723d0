"""Route one repository call by the flags in force: to MySQL, to DynamoDB, or to both."""
from __future__ import annotations

import contextvars
import logging
import threading
from contextlib import nullcontext
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.events import emit, wanted

from ..errors import NotFoundError, ShopError, StoreUnavailableError
from ..inflight import REQUEST_SENT
from ..repositories.dynamodb.client import impatient
from ..repositories.dynamodb.errors import Diverged, Superseded
from . import budget
from . import flags as flags_mod
from .breaker import CircuitBreaker
from .compare import Difference, attribute_names, diff, in_flight, own, record_versions
from .errors import DualReadMismatch, SecondaryWriteFailed
from .stats import Stats
from .table import DEFAULT_TOUCHES, MIRROR, READ

log = logging.getLogger("shop.aspects")
tracer = trace.get_tracer("shop.aspects")


@dataclass(frozen=True)
class Outcome:
    value: object = None
    error: BaseException | None = None


class Runtime:
    """Everything routing needs for one application: its counterparts, policies and health."""

    def __init__(self, settings, journal, default_flags, entities, phase=None, catch_up=None):
        """Given by the application (shop/__init__.py) from the migration package, which the
        routing layer does not import: the journal (shop.migration.journal.Journal), the entity
        a repository class concerns (`entities(repository)`, shop.migration.entities), the
        stored phase (shop.migration.state.PhaseView) and the copy back (shop.migration.catchup)."""
        self.settings = settings
        self.journal = journal
        self.repair_log = journal.repair_log  # the journal's MySQL side: what failed to reach DynamoDB
        self.default_flags = default_flags  # SHOP_FLAGS: the phase until one is stored
        self.entity_of = entities
        self.phase = phase
        self.catch_up = catch_up
        self.pinned = settings.shop_flags_pinned
        self.call_log_level = logging.getLevelName(settings.call_log_level)
        self.stats = Stats(entity_of=lambda repository: getattr(entities(repository), "name", repository))
        self.breaker = CircuitBreaker(settings.breaker_threshold, settings.breaker_cooldown_s,
                                      on_change=self.stats.breaker_state)
        self._pool = ThreadPoolExecutor(max_workers=settings.dual_read_workers, thread_name_prefix="dual-read")
        # Secondary writes run here so a stalled DynamoDB costs a request at most the deadline;
        # shared by the worker's threads, like the breaker that stops sending after repeated timeouts.
        self._writes = ThreadPoolExecutor(max_workers=settings.dual_read_workers, thread_name_prefix="dual-write")
        self._paces: dict[str, Pace] = {}  # route name -> how its dual reads run
        self._ddb_reads_running: dict[object, float] = {}  # every route's, for Recent
        self.dual_read_execution = settings.dual_read_execution  # auto | inline | concurrent | mysql-pooled

    def server_flags(self) -> flags_mod.Flags:
        """The server's phase: stored (changed at runtime), else SHOP_FLAGS; pinned: SHOP_FLAGS."""
        if self.pinned or self.phase is None:
            return self.default_flags
        return self.phase.current().flags

    def mysql_behind(self) -> bool:
        """Whether MySQL may still lack writes made to DynamoDB alone (left phase 5, late copy
        not finished): the phase state says so until the journal towards MySQL is empty."""
        if self.pinned or self.phase is None:
            return False
        return bool(self.phase.current().doc.get("mysql_behind_since"))

    def flags(self) -> flags_mod.Flags:
        """Trusted code's flags (use_flags) as given; a browser's reads with the server's writes."""
        server = self.server_flags()
        if self.pinned:
            return server
        return flags_mod.explicit() or flags_mod.combine(server, flags_mod.browser())

    def close(self) -> None:
        if self.phase is not None:
            self.phase.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._writes.shutdown(wait=False, cancel_futures=True)

    # --- the two paths ------------------------------------------------------------------

    def route(self, route, original, ddb_repo, arguments, args, kwargs):
        flags = self.flags()
        start = time.perf_counter()
        error = None
        caller = trace.get_current_span()
        # Inside a sampled-out request nothing below would be recorded (parent-based sampling).
        sampled_out = not caller.is_recording() and caller.get_span_context().is_valid
        scope = nullcontext(caller) if sampled_out else tracer.start_as_current_span(route.name, kind=SpanKind.INTERNAL)
        with scope as span:
            if span.is_recording():
                span.set_attributes({"shop.flags": str(flags), "shop.scenario": flags.scenario,
                                     "shop.operation": route.name, "shop.operation.kind": route.kind,
                                     **_key_attributes(route, arguments)})
            try:
                if route.kind == READ:
                    return self._read(route, flags, original, ddb_repo, arguments, args, kwargs, span)
                return self._write(route, flags, original, ddb_repo, arguments, args, kwargs, span)
            except Exception as exc:
                error = exc
                raise
            finally:
                # One line and span event per routed read or write (comparisons and repairs have their own).
                if wanted(log, self.call_log_level, span):
                    emit(log, self.call_log_level, route.kind, {
                        "event": route.kind, "operation": route.name, "flags": str(flags),
                        "stores": _stores(route, flags), "key": _key_text(route, arguments),
                        "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                        "error_type": type(error).__name__ if error else None}, span)

    def _read(self, route, flags, original, ddb_repo, arguments, args, kwargs, span):
        ddb_call = lambda: getattr(ddb_repo, route.target)(*args, **kwargs)  # noqa: E731
        mysql_call = lambda: original(*args, **kwargs)  # noqa: E731
        if not flags.dual_read:
            if flags.read_mysql:
                return self._store("mysql", route, mysql_call).unwrap()
            if flags.write_mysql:  # phase 4: MySQL, written first, can answer for a DynamoDB that does not
                return self._read_dynamodb_or_mysql(route, ddb_call, mysql_call, span)
            return self._store("dynamodb", route, ddb_call).unwrap()
        trial = self._browser_trial()
        # The budget first: the breaker's allow() may grant this call its one half-open probe,
        # which must then be fed an outcome (a probe granted and never fed keeps it open).
        if flags.authority == "mysql" and (budget.left(budget.READ, 1) <= 0 or not self.breaker.allow()):
            self._compared(route, "skipped", [], arguments, span, trial)
            return self._store("mysql", route, mysql_call).unwrap()
        first_read = time.monotonic()
        mysql, ddb, differences, outcome = self._read_both(route, flags, original, ddb_call, args, kwargs)
        first_versions = record_versions(mysql.outcome.value) if outcome == "mismatch" else {}
        # A write between its MySQL commit and its DynamoDB write looks like a difference for a
        # moment; a real divergence is still there a little later. Two rechecks, 1x then 4x; then,
        # for a difference that stays, one last look once any write in flight has met its
        # dual-write deadline (by then it landed, or it is journaled and reported below). Each
        # look's wait on DynamoDB is spent from the request's budget (a stalled DynamoDB times out
        # the first and ends the looking).
        recheck = self.settings.dual_read_recheck_ms / 1000
        last_look = False
        for pause in ((1, 4, None) if recheck else ()):
            if outcome != "mismatch":
                break
            if pause is None:
                pause_s = self.settings.dual_write_timeout_ms / 1000 - (time.monotonic() - first_read)
                if pause_s <= 0:
                    break
                last_look = True
            else:
                pause_s = pause * recheck
            time.sleep(pause_s)
            mysql, ddb, differences, outcome = self._read_both(route, flags, original, ddb_call, args, kwargs)
            if outcome == "match":
                outcome = "transient"
        if outcome == "mismatch" and last_look and in_flight(
                first_versions, record_versions(mysql.outcome.value), record_versions(ddb.outcome.value)):
            outcome = "transient"  # a record written again and again: DynamoDB follows, one copy behind
        if outcome == "mismatch" and self._pending(route, arguments, mysql, ddb, differences):
            outcome = "pending_repair"  # a known divergence, waiting for its replay: reported only
        self._compared(route, outcome, differences, arguments, span, trial)
        if outcome == "mismatch":
            # A browser trying dual reads on its own gets reports, never errors, and its findings
            # are kept apart: the server's mismatch record is the 3 -> 4 gate's evidence.
            if not trial:
                self._remember_mismatch(route, differences)
            # Raised only where the operator made dual reads the server's phase (behind its gates).
            if self.settings.dual_read_mode == "raise" and not trial:
                raise DualReadMismatch(route.name, _key(route, arguments), differences)
        authority = mysql if flags.authority == "mysql" else ddb
        return authority.unwrap()

    def pace(self, route_name: str) -> "Pace":
        """How the route's dual reads run; every route's Pace sees the reads under way on all."""
        return self._paces.get(route_name) or self._paces.setdefault(
            route_name, Pace(self.settings, self._ddb_reads_running))

    def _read_dynamodb_or_mysql(self, route, ddb_call, mysql_call, span):
        """Phase 4's read: DynamoDB's answer, within the request's budget; when DynamoDB fails or
        is late, MySQL's (written first in phase 4, it holds every acknowledged write), counted
        as a fallback. On the request's thread while DynamoDB's recent reads came well in time
        (as inline dual reads), else on the pool, abandoned at the budget."""
        pace = self.pace(route.name)
        timeout = budget.left(budget.READ, self.settings.dual_read_timeout_ms / 1000)
        if timeout <= 0 or not self.breaker.allow():  # not asked: nothing to tell the breaker
            ddb = _timed_out()
        else:
            with budget.waiting(budget.READ):
                if pace.dynamodb.all_within() and timeout >= self.settings.dual_read_timeout_ms / 1000:
                    ddb = self._caller_dynamodb(route, ddb_call, pace)
                else:
                    ddb = self._pooled_dynamodb(route, ddb_call, pace, timeout)
            self._feed_breaker(ddb.outcome.error)
        if not isinstance(ddb.outcome.error, (StoreUnavailableError, TimeoutError)):
            return ddb.unwrap()
        self.stats.fallback(route.name)
        if span.is_recording():
            span.set_attribute("shop.read.fallback", "mysql")
        emit(log, logging.WARNING, "read served by MySQL", {
            "event": "fallback", "operation": route.name, "error_type": type(ddb.outcome.error).__name__}, span)
        return self._store("mysql", route, mysql_call).unwrap()

    def _pooled_dynamodb(self, route, ddb_call, pace, timeout):
        def timed_ddb():
            running = pace.dynamodb.start()
            try:
                return self._store("dynamodb", route, ddb_call)
            finally:
                pace.dynamodb.finish(running)
        future = self._pool.submit(contextvars.copy_context().run, timed_ddb)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            return _timed_out()

    def _read_both(self, route, flags, original, ddb_call, args, kwargs):
        pace = self.pace(route.name)
        timeout = budget.left(budget.READ, self.settings.dual_read_timeout_ms / 1000)
        # DynamoDB on the request's thread cannot be abandoned: only with the whole limit left
        way = pace.choose(self.dual_read_execution) if timeout * 1000 >= self.settings.dual_read_timeout_ms else CONCURRENT
        start = time.perf_counter()
        with budget.waiting(budget.READ):
            if way == INLINE:
                mysql, ddb = self._read_inline(route, original, ddb_call, args, kwargs, pace)
            elif way == MYSQL_POOLED:
                mysql, ddb = self._read_mysql_pooled(route, original, ddb_call, args, kwargs, pace)
            else:
                mysql, ddb = self._read_concurrent(route, original, ddb_call, args, kwargs, pace, timeout)
        if self.dual_read_execution == "auto":  # a fixed way measures nothing for the choice
            pace.record(way, time.perf_counter() - start)
        authority, candidate = (mysql, ddb) if flags.authority == "mysql" else (ddb, mysql)
        self._feed_breaker(ddb.outcome.error)
        differences, outcome = self._compare(route, mysql.outcome, ddb.outcome, authority.outcome, candidate.outcome)
        return mysql, ddb, differences, outcome

    def _browser_trial(self) -> bool:
        """Dual reads a browser chose while the server's phase does not dual-read."""
        return (flags_mod.explicit() is None and flags_mod.browser() is not None
                and not self.server_flags().dual_read)

    def _pending(self, route, arguments, mysql, ddb, differences=()) -> bool:
        """Whether the journal holds an open entry for what this read returns: its entity; for
        a listing whose records differ, one of the records either store returned; for an
        aggregate (stats, a summary, a listing's total), any entity of its kind: a record
        written to one store only changes the other's count though it is on another page."""
        entity = self.entity_of(route.repository)
        if entity is None:
            return False
        if entity.key in route.key and entity.key in arguments:
            ask = lambda: self.journal.is_pending(entity.name, arguments[entity.key])  # noqa: E731
        else:
            ids = _record_ids(mysql.outcome.value) | _record_ids(ddb.outcome.value)
            if ids and all(d.path.startswith("items[") for d in differences):
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

    def _remember_mismatch(self, route, differences) -> None:
        if self.phase is not None:
            self.phase.store.record_mismatch(route.name, "mismatch", attribute_names(differences),
                                             self.phase.current().label)

    def _read_concurrent(self, route, original, ddb_call, args, kwargs, pace, timeout=None):
        """DynamoDB on the pool, MySQL on the caller's thread once DynamoDB's first request is
        on the wire (shop.inflight); DynamoDB waited for at most the dual-read timeout (or what
        the request has left of it)."""
        sent = threading.Event()

        def timed_ddb():
            running = pace.dynamodb.start()
            token = REQUEST_SENT.set(sent)
            try:
                return self._store("dynamodb", route, ddb_call)
            finally:
                REQUEST_SENT.reset(token)
                sent.set()
                pace.dynamodb.finish(running)
        timeout = self.settings.dual_read_timeout_ms / 1000 if timeout is None else timeout
        future = self._pool.submit(contextvars.copy_context().run, timed_ddb)
        # Building a request takes a millisecond or two; a pool with no free thread (DynamoDB
        # stalling every read) must not hold MySQL back: after SENT_WAIT_S, read MySQL anyway.
        sent.wait(min(timeout, SENT_WAIT_S))
        mysql = self._store("mysql", route, lambda: original(*args, **kwargs))
        try:
            ddb = future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            ddb = _timed_out()
        return mysql, ddb

    def _read_mysql_pooled(self, route, original, ddb_call, args, kwargs, pace):
        """MySQL on the pool, DynamoDB on the caller's thread: the caller does the heavier Python
        work (building and parsing DynamoDB's request) while MySQL's short query waits on its
        socket. Like inline reads, chosen only while DynamoDB answers well within the timeout.
        MySQL never queues: if no pool thread has taken it by the time DynamoDB answered, it
        runs here."""
        mysql_call = lambda: original(*args, **kwargs)  # noqa: E731
        future = self._pool.submit(contextvars.copy_context().run, self._store, "mysql", route, mysql_call)
        ddb = self._caller_dynamodb(route, ddb_call, pace)
        mysql = self._store("mysql", route, mysql_call) if future.cancel() else future.result()
        return mysql, ddb

    def _caller_dynamodb(self, route, ddb_call, pace):
        """DynamoDB on the caller's thread, which nothing can abandon: its client makes one
        attempt whose waits end at the timeout (impatient), and an answer later than the timeout
        still counts as a timeout and sends the route back to concurrent reads (Pace)."""
        running = pace.dynamodb.start()
        try:
            with impatient():
                ddb = self._store("dynamodb", route, ddb_call)
        finally:
            took = pace.dynamodb.finish(running)
        return _timed_out() if took * 1000 > self.settings.dual_read_timeout_ms else ddb

    def _read_inline(self, route, original, ddb_call, args, kwargs, pace):
        """Both on the caller's thread, one after the other: no hand-off between threads. Chosen
        only while DynamoDB's recent answers came well within the timeout (Pace); an answer later
        than the timeout still counts as a timeout, and sends the route back to concurrent reads."""
        mysql = self._store("mysql", route, lambda: original(*args, **kwargs))
        return mysql, self._caller_dynamodb(route, ddb_call, pace)

    def _compare(self, route, mysql: Outcome, ddb: Outcome, authority: Outcome, candidate: Outcome):
        """Availability failures are not disagreements: the authority's failure fails the
        call; the candidate's is counted and the authority's answer stands."""
        if isinstance(authority.error, (StoreUnavailableError, TimeoutError)):
            return [], "authority_error"
        if isinstance(candidate.error, TimeoutError):
            return [], "timeout"
        if isinstance(candidate.error, StoreUnavailableError):
            return [], "candidate_error"
        if mysql.error or ddb.error:
            same = type(mysql.error) is type(ddb.error) and str(mysql.error) == str(ddb.error)
            if same:
                return [], "match"
            return [Difference("", "error", _describe(mysql), _describe(ddb))], "mismatch"
        if route.joins:
            differences = diff(own(mysql.value), own(ddb.value), route.unordered)
        else:
            differences = diff(mysql.value, ddb.value, route.unordered)
        return differences, ("mismatch" if differences else "match")

    def _compared(self, route, outcome, differences, arguments, span, trial=False):
        names = attribute_names(differences)
        if trial:
            self.stats.trial_comparison(route.name, outcome)
        else:
            self.stats.comparison(route.name, outcome, names)
        # A match is recorded on the routed span (below); a span of its own is kept for what an
        # operator looks for: mismatches, timeouts, failures. Under a span not recorded, it
        # would not be recorded either.
        level = logging.WARNING if outcome in ("mismatch", "candidate_error", "timeout", "authority_error") \
            else logging.INFO
        fields = {"event": "compare", "operation": route.name, "outcome": outcome, "attributes": names,
                  "key": _key_text(route, arguments), **({"trial": True} if trial else {})}
        if span.is_recording() and outcome != "match":
            with tracer.start_as_current_span(f"compare {route.name}") as cspan:
                if cspan.is_recording():
                    cspan.set_attributes({"shop.compare.outcome": outcome, "shop.operation": route.name,
                                          "shop.compare.mismatched_attributes": names})
                    if outcome == "mismatch":
                        cspan.set_status(Status(StatusCode.ERROR, "dual read mismatch"))
                emit(log, level, "dual read compared", fields, cspan)
        elif wanted(log, level, span):
            emit(log, level, "dual read compared", fields, span)
        if span.is_recording():
            span.set_attribute("shop.compare.outcome", outcome)

    def _write(self, route, flags, original, ddb_repo, arguments, args, kwargs, span):
        if not flags.write_mysql:
            result = self._store("dynamodb", route, lambda: getattr(ddb_repo, route.target)(*args, **kwargs)).unwrap()
            # MySQL lacks this write until the reverse copy replays it (leaving phase 5).
            self._journal(self.journal.to_mysql, route, arguments, result, "written to DynamoDB only", span)
            return result
        if flags.write_ddb and self.mysql_behind() and self._touches_behind(route, arguments):
            return self._write_dynamodb_first(route, ddb_repo, arguments, args, kwargs, span)
        result = self._store("mysql", route, lambda: original(*args, **kwargs)).unwrap()
        if flags.write_ddb:
            self._secondary_write(route, ddb_repo, arguments, args, kwargs, result, span)
        elif route.deletes and result:
            # DynamoDB may hold an earlier copy: only a recorded deletion may remove it there.
            self._journal(self.journal.to_dynamodb, route, arguments, result, "deleted while DynamoDB was not written",
                          span)
        return result

    def _touches_behind(self, route, arguments) -> bool:
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
                   for entity, entity_id in (route.touches or DEFAULT_TOUCHES)(arguments))

    def _write_dynamodb_first(self, route, ddb_repo, arguments, args, kwargs, span):
        """MySQL's row may be stale: DynamoDB (holding every write) takes this one first, then
        what it touched is copied back to MySQL under the entity's lock (shop.migration.catchup)."""
        if span.is_recording():
            span.set_attribute("shop.write.order", "dynamodb-first")
        result = self._store("dynamodb", route, lambda: getattr(ddb_repo, route.target)(*args, **kwargs)).unwrap()
        targets = self._journal(self.journal.to_mysql, route, arguments, result,
                                "written to DynamoDB first while MySQL catches up", span)
        if self.catch_up is not None and targets:
            self.catch_up(targets)
        return result

    def _journal(self, direction, route, arguments, result, why, span) -> list:
        """Record a write that reached one store; the write itself stands whatever happens here
        (verify still finds the entity if the record is lost). Returns the entities it concerns."""
        if route.repairs is None or (route.deletes and not result):
            return []
        targets = route.repairs(arguments, result)
        names = [f"{e}:{i}" for e, i in targets]
        try:
            count = self.journal.record(direction, targets, route.name, why, deleted=route.deletes)
        except Exception as exc:  # noqa: BLE001
            emit(log, logging.ERROR, "write not journaled", {"event": "journal", "operation": route.name,
                                                             "direction": direction, "targets": names,
                                                             "error_type": type(exc).__name__}, span)
            return targets
        emit(log, logging.INFO, "write recorded for the other store", {
            "event": "journal", "operation": route.name, "direction": direction, "targets": names,
            "deleted": route.deletes, "recorded": count}, span)
        return targets

    def _secondary_write(self, route, ddb_repo, arguments, args, kwargs, result, span):
        """DynamoDB's half of a dual write, after MySQL's committed: MySQL's resulting record is
        copied (MIRROR), and kept only if newer than DynamoDB's (Superseded otherwise: a later
        write's copy landed first, nothing to do). Whatever it could not apply is recorded for
        repair, which copies MySQL's state again: quietly while the backfill has not run yet
        (DynamoDB cannot hold what was never copied), as a divergence after it."""
        targets = route.repairs(arguments, result) if route.repairs else []
        deadline = budget.left(budget.WRITE, self.settings.dual_write_timeout_ms / 1000)
        if deadline <= 0:  # before allow(), which may grant a probe that must then be fed
            self._record_repair(route, targets, "the request's time for DynamoDB writes was spent", span,
                                route.deletes)
            return
        if not self.breaker.allow():
            self._record_repair(route, targets, "circuit open: DynamoDB was failing", span, route.deletes)
            return
        awaiting = self._awaiting_backfill()
        extra = {"mirror_of": result} if route.ids == MIRROR else {}
        call = lambda: getattr(ddb_repo, route.target)(*args, **kwargs, **extra)  # noqa: E731
        future = self._writes.submit(contextvars.copy_context().run, self._store, "dynamodb", route, call,
                                     MISSING if awaiting else ())
        try:
            with budget.waiting(budget.WRITE):
                outcome = future.result(timeout=deadline)
        except FutureTimeout:
            # It may still land later; the repair entry makes the outcome right either way.
            outcome = _Result(Outcome(error=TimeoutError("DynamoDB write exceeded the dual-write deadline")))
        error = outcome.outcome.error
        self._feed_breaker(None if isinstance(error, (Superseded, Diverged)) else error)
        if isinstance(error, Superseded):
            self.stats.mirror(route.name, "superseded")
            if span.is_recording():
                span.add_event("mirror.superseded", {"shop.operation": route.name, "held": str(error.held),
                                                     "offered": str(error.offered)})
            return
        if isinstance(error, Diverged):
            targets = error.targets
        elif error is None and route.ids == MIRROR and result is not None and outcome.outcome.value is None:
            error = LookupError("DynamoDB had no record to update")  # a divergence found by writing
        if error is None:
            self.stats.mirror(route.name, "applied")
            return
        if awaiting and isinstance(error, MISSING + (LookupError,)):
            self.stats.mirror(route.name, "awaiting_backfill")
            self.journal.record(self.journal.to_dynamodb, targets, route.name,
                                f"awaiting the backfill: {type(error).__name__}: {error}", deleted=route.deletes,
                                level=logging.INFO)
            return
        self.stats.mirror(route.name, "diverged" if isinstance(error, (Diverged, LookupError)) else "failed")
        self._record_repair(route, targets, error, span, route.deletes)
        if self.settings.dual_write_policy == "raise":
            raise SecondaryWriteFailed(f"{route.name} was saved in MySQL but not in DynamoDB; "
                                       "it is recorded for repair") from error

    def _awaiting_backfill(self) -> bool:
        """Whether DynamoDB may still lack rows MySQL had before dual writes began: no backfill
        has completed since they began (the phase document's marks)."""
        if self.phase is None:
            return False
        doc = self.phase.current().doc
        done = doc.get("marks", {}).get("backfill", {}).get("completed_at")
        since = doc.get("dual_write_since")
        return not done or bool(since and done < since)

    def _record_repair(self, route, targets, error, span, deleted=False):
        count = self.journal.record(self.journal.to_dynamodb, targets, route.name, error, deleted=deleted)
        self.stats.repair(route.name, count)
        if span.is_recording():  # the repair log adds one event per target
            span.set_attribute("shop.repair.recorded", count)

    def _feed_breaker(self, error):
        if error is None:
            self.breaker.success()
        elif isinstance(error, (StoreUnavailableError, TimeoutError)):
            self.breaker.failure()
        else:
            self.breaker.release()

    def _store(self, store: str, route, call, expected=()) -> "_Result":
        """One store's call, timed and counted. What a mirror answers instead of applying a copy
        (Superseded, Diverged), and the `expected` errors, are outcomes, not the store's errors."""
        start = time.perf_counter()
        # Under a parent that is not recording, a child would not be either (parent-based
        # sampling): skip creating it, the dearest part of the unsampled path.
        if not trace.get_current_span().is_recording():
            try:
                value = call()
            except Exception as exc:
                counted = None if isinstance(exc, NOT_FAILURES + tuple(expected)) else exc
                self.stats.call(store, route.kind, route.name, (time.perf_counter() - start) * 1000, counted)
                return _Result(Outcome(error=exc))
            self.stats.call(store, route.kind, route.name, (time.perf_counter() - start) * 1000, None)
            return _Result(Outcome(value=value))
        with tracer.start_as_current_span(f"{store} {route.name}") as span:
            span.set_attributes({"shop.store": store, "shop.operation": route.name})
            try:
                value = call()
            except Exception as exc:
                if isinstance(exc, NOT_FAILURES + tuple(expected)):
                    self.stats.call(store, route.kind, route.name, (time.perf_counter() - start) * 1000, None)
                    span.set_attribute("shop.outcome", type(exc).__name__)
                    return _Result(Outcome(error=exc))
                self.stats.call(store, route.kind, route.name, (time.perf_counter() - start) * 1000, exc)
                span.record_exception(exc)
                span.set_attribute("error.type", type(exc).__name__)
                if not isinstance(exc, ShopError) or isinstance(exc, StoreUnavailableError):
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                return _Result(Outcome(error=exc))
        self.stats.call(store, route.kind, route.name, (time.perf_counter() - start) * 1000, None)
        return _Result(Outcome(value=value))


# A mirror's answers that are not DynamoDB failing; and what a mirror meets while the backfill
# has not run (a row, or its parent, DynamoDB does not hold yet).
NOT_FAILURES = (Superseded, Diverged)
MISSING = (NotFoundError, Diverged)

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


def _timed_out() -> "_Result":
    return _Result(Outcome(error=TimeoutError("DynamoDB read exceeded the dual-read timeout")))


class _Result:
    __slots__ = ("outcome",)

    def __init__(self, outcome: Outcome):
        self.outcome = outcome

    def unwrap(self):
        if self.outcome.error is not None:
            raise self.outcome.error
        return self.outcome.value


def _describe(outcome: Outcome):
    return f"raised {type(outcome.error).__name__}" if outcome.error else "returned a value"


def _stores(route, flags) -> str:
    if route.kind == READ:
        return "mysql+dynamodb" if flags.dual_read else ("mysql" if flags.read_mysql else "dynamodb")
    return "mysql+dynamodb" if flags.dual_write else ("mysql" if flags.write_mysql else "dynamodb")


def _record_ids(value) -> set[int]:
    """The ids of the records a read returned: a record, a list of them, or a page."""
    records = value.items if isinstance(getattr(value, "items", None), list) else value
    records = records if isinstance(records, list) else [records]
    return {int(r.id) for r in records if isinstance(getattr(r, "id", None), int)}


def _key(route, arguments) -> dict:
    return {k: arguments.get(k) for k in route.key if k in arguments}


def _key_text(route, arguments) -> str:
    return ",".join(f"{k}={arguments.get(k)!s}"[:80] for k in route.key if k in arguments)


def _key_attributes(route, arguments) -> dict:
    return {f"shop.key.{k}": str(arguments[k])[:200] for k in route.key if k in arguments}
