"""Route one repository call by the flags in force: to MySQL, to DynamoDB, or to both.

Runtime holds what routing needs for one application (settings, pools, breaker, stats, the
journal); its read path is reads.py, its write path writes.py, each taking one `Call`."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability.events import emit, wanted

from ..errors import ShopError, StoreUnavailableError
from ..repositories.dynamodb.errors import Diverged, Superseded
from . import flags as flags_mod
from . import tally
from .breaker import CircuitBreaker
from .call import Call, Outcome, store_failed
from .exposure import Exposure
from .pace import Pace
from .reads import ReadPath
from .shadow import ShadowPool
from .stats import Stats
from .table import READ
from .writes import WritePath

log = logging.getLogger("shop.aspects")
tracer = trace.get_tracer("shop.aspects")


class Runtime(ReadPath, WritePath):
    """Everything routing needs for one application: its counterparts, policies and health."""

    def __init__(self, settings, journal, default_flags, entities, phase=None, catch_up=None, evidence=None):
        """Given by the application (shop/__init__.py) from the migration package, which the
        routing layer does not import: the journal (shop.migration.journal.Journal), the entity
        a repository class concerns (`entities(repository)`, shop.migration.entities), the
        stored phase (shop.migration.state.PhaseView), the copy back (shop.migration.catchup) and
        where reads' evidence is kept for the gates and the guard (shop.migration.evidence)."""
        self.settings = settings
        self.journal = journal
        self.repair_log = journal.repair_log  # the journal's MySQL side: what failed to reach DynamoDB
        self.default_flags = default_flags  # SHOP_FLAGS: the phase until one is stored
        self.entity_of = entities
        self.phase = phase
        self.catch_up = catch_up
        self.evidence = evidence
        self.shadow = ShadowPool(settings.shadow_workers, settings.shadow_queue)
        self._entity_names: dict[str, str | None] = {}  # route name -> its entity's name
        self._exposures: tuple[int, dict] = (-1, {})   # (phase document version, entity -> Exposure)
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

    def exposure(self, entity: str | None) -> Exposure:
        """How far the entity's reads are exposed (shop.aspects.exposure): the phase document's
        policy for it, else the settings' defaults (SHOP_COMPARE_PERCENT, SHOP_COMPARE_MODE)."""
        state = None if self.pinned or self.phase is None else self.phase.current()
        version = state.version if state is not None else 0
        cached_version, cache = self._exposures
        if cached_version != version:
            cache = {}
            self._exposures = (version, cache)
        found = cache.get(entity)
        if found is None:
            policy = state.policy(entity) if state is not None else {}
            found = cache[entity] = Exposure(
                float(policy.get("compare_percent", self.settings.compare_percent)),
                policy.get("compare_mode", self.settings.compare_mode),
                float(policy.get("read_rollout_percent", 0)))
        return found

    def rollout_salt(self) -> str:
        """Readers' places in a canary: the same for every entity, so a reader moves to
        DynamoDB for all of them at one percentage; a new salt reshuffles who is first."""
        if self.pinned or self.phase is None:
            return "shop"
        return self.phase.current().doc.get("rollout_salt") or "shop"

    def close(self) -> None:
        self.shadow.close()
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
            call = Call(route, flags, original, ddb_repo, arguments, args, kwargs, span, self._entity(route))
            if span.is_recording():
                span.set_attributes({"shop.flags": str(flags), "shop.scenario": flags.scenario,
                                     "shop.operation": route.name, "shop.operation.kind": route.kind,
                                     **call.key_attributes})
            try:
                return self._read(call) if route.kind == READ else self._write(call)
            except Exception as exc:
                error = exc
                raise
            finally:
                # One line and span event per routed read or write (comparisons and repairs have their own).
                if wanted(log, self.call_log_level, span):
                    emit(log, self.call_log_level, route.kind, {
                        "event": route.kind, "operation": route.name, "flags": str(flags),
                        "stores": call.stores, "key": call.key_text,
                        "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                        "error_type": type(error).__name__ if error else None}, span)

    def _entity(self, route) -> str | None:
        try:
            return self._entity_names[route.name]
        except KeyError:
            entity = self.entity_of(route.repository)
            return self._entity_names.setdefault(route.name, entity.name if entity is not None else None)

    def _observe_read(self, route, store: str, seconds: float, error) -> None:
        """A read's answer in the per-entity metrics and the evidence (a domain error, such as
        NotFound, is an answer; a store failing is not)."""
        entity = self._entity(route)
        if entity is None:
            return
        failed = store_failed(error)
        waiting = tally.current() if store == "dynamodb" else None
        if waiting is not None:  # its caller may give up on it: counted once, by whoever settles it
            waiting.answered(seconds, failed)
        else:
            self._record_read(entity, store, seconds, failed)

    def _record_read(self, entity: str | None, store: str, seconds: float, failed: bool) -> None:
        if entity is None:
            return
        self.stats.entity_read(entity, store, seconds, failed)
        if self._keeps_evidence():
            self.evidence.read(entity, store, seconds, failed)

    def _keeps_evidence(self) -> bool:
        """Whether this call is the server's evidence: what its phase served. A browser's trial
        (its cookie) and trusted code's own flags (use_flags: the CLI, jobs) are not; nor is
        anything in phase 5, where nothing judges it and MySQL, which keeps it, may be retired
        (counts that could never be written would pile up in memory)."""
        if self.evidence is None or flags_mod.explicit() is not None:
            return False
        server = self.server_flags()
        return server.write_mysql and (flags_mod.browser() is None or self.flags() == server)

    def _skipped(self, call: Call, store: str) -> None:
        """A read the store was not asked for (its breaker open): evidence against it."""
        if call.entity is not None and self._keeps_evidence():
            self.evidence.skipped(call.entity, store)

    def _feed_breaker(self, error):
        if error is None:
            self.breaker.success()
        elif store_failed(error):
            self.breaker.failure()
        else:
            self.breaker.release()

    def _store(self, store: str, route, call, expected=()) -> Outcome:
        """One store's call, timed and counted. What a mirror answers instead of applying a copy
        (Superseded, Diverged), and the `expected` errors, are outcomes, not the store's errors."""
        start = time.perf_counter()
        # Under a parent that is not recording, a child would not be either (parent-based
        # sampling): skip creating it, the dearest part of the unsampled path.
        if not trace.get_current_span().is_recording():
            try:
                outcome = Outcome(value=call())
            except Exception as exc:
                outcome = Outcome(error=exc)
            return self._counted(store, route, start, outcome, expected)
        with tracer.start_as_current_span(f"{store} {route.name}") as span:
            span.set_attributes({"shop.store": store, "shop.operation": route.name})
            try:
                outcome = Outcome(value=call())
            except Exception as exc:
                outcome = Outcome(error=exc)
                if isinstance(exc, NOT_FAILURES + tuple(expected)):
                    span.set_attribute("shop.outcome", type(exc).__name__)
                else:
                    span.record_exception(exc)
                    span.set_attribute("error.type", type(exc).__name__)
                    if not isinstance(exc, ShopError) or isinstance(exc, StoreUnavailableError):
                        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        return self._counted(store, route, start, outcome, expected)

    def _counted(self, store: str, route, start: float, outcome: Outcome, expected) -> Outcome:
        seconds = time.perf_counter() - start
        error = outcome.error
        counted = None if error is None or isinstance(error, NOT_FAILURES + tuple(expected)) else error
        self.stats.call(store, route.kind, route.name, seconds * 1000, counted)
        if route.kind == READ:
            self._observe_read(route, store, seconds, error)
        return outcome


# A mirror's answers that are not DynamoDB failing: a later copy already there, a line MySQL removed.
NOT_FAILURES = (Superseded, Diverged)
