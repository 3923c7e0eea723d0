"""The guard: steps reads back by itself when an entity's reads break a limit, never forward.

Every worker runs one (`Watch`, a thread beside the phase poll): each second it adds the
worker's evidence to MySQL's and reads, per entity whose reads DynamoDB takes part in (phase 3
or 4), the last SHOP_GUARD_WINDOW_S of every worker's evidence since the entity's exposure last
changed. When a limit breaks (shop.migration.limits), it takes that entity's reads one step back:

- phase 4: back to phase 3, the entity's canary at 50 % and the others' at 100 % (they keep
  reading DynamoDB);
- phase 3 with the entity's canary above 0: its canary one step down the ramp (50 -> 25);
- phase 3 with no canary: back to phase 2 (reads from MySQL only; writes unchanged).

Exactly one step per breach across workers: the step is saved with compare-and-set on the phase
document's version, so of the workers that saw the breach one saves and the others' saves are
refused; and the step restarts the entity's window, so the evidence that made one step cannot
make a second. Audited as `guard` with the evidence, logged, counted in /metrics
(shop_guard_steps_total). An operator re-promotes, behind the gates.
"""
from __future__ import annotations

import logging
import threading
import weakref
from datetime import timedelta

from observability.events import emit

from ..aspects.exposure import step_below
from .limits import Limits, Verdict
from .state import ConcurrentChange, PhaseState, at_step, iso, next_doc, now

log = logging.getLogger("shop.migration")
WHO = "guard"


class Guard:
    def __init__(self, view, evidence, settings, stats, entity_names):
        self.view, self.evidence, self.settings, self.stats = view, evidence, settings, stats
        self.entity_names = tuple(entity_names)
        self.limits = Limits.of(settings)

    def check(self) -> dict | None:
        """Look once; step back at most one entity. Returns the step taken, or None."""
        state = self.view.current()
        if state.source != "stored" or state.phase not in (3, 4):
            return None
        windows = self._windows(state)
        for entity in self.entity_names:
            ev = windows.get(entity)
            broken = self.limits.broken(ev) if ev is not None else []
            if broken:
                return self.step_back(state, entity, broken, ev.as_dict())
        return None

    def _windows(self, state: PhaseState) -> dict:
        """Each entity's evidence over the last window, since its current step began."""
        return self.evidence.at_steps(state, self.entity_names, now() - timedelta(seconds=self.settings.guard_window_s))

    def step_back(self, state: PhaseState, entity: str, broken: list[Verdict], evidence: dict) -> dict | None:
        """One step back for `entity`, saved only over the version `state` was read at."""
        doc, to, what = _stepped(state, entity, self.entity_names)
        reason = f"{entity}: " + "; ".join(v.detail for v in broken)
        try:
            version = self.view.store.save(doc, state.version, quick=True)
        except ConcurrentChange:
            return None  # another worker's guard (or an operator) changed it first: its step stands
        step = {"entity": entity, "from": state.label, "to": to, "what": what, "reason": reason,
                "limits": [v.limit for v in broken], "version": version}
        self.view.store.audit({"who": WHO, "from": state.label, "to": to, "forced": False,
                               "outcome": "stepped back", "reason": f"{what}: {reason}"[:1000],
                               "gates": [{"name": v.limit, "ok": False, "detail": v.detail} for v in broken]
                               + [{"name": "evidence", "ok": True, "detail": _brief(evidence)}]})
        for v in broken:
            self.stats.guard_step(entity, v.limit)
        emit(log, logging.WARNING, "guard stepped reads back", {"event": "guard", **step})
        self.view.refresh(wait_s=0.5)  # as the poll reads: a stalled DynamoDB must not hold the guard
        return step


def _stepped(state: PhaseState, entity: str, names) -> tuple[dict, str, str]:
    """The document one step back for `entity`, the phase it lands in, and what changed."""
    rollout, at, version = state.rollout(entity), iso(now()), state.version + 1
    if state.phase == 4:
        doc = next_doc(state, 3, WHO, f"{entity} broke a limit in phase 4", False)
        doc["entities"] = {name: at_step(doc["entities"].get(name) or {}, step_below(100) if name == entity else 100,
                                         at, version) for name in names}
        return doc, "3", f"phase 4 -> 3, {entity} reads on DynamoDB for {step_below(100):g}% of readers"
    if rollout > 0:
        doc = dict(state.doc)
        doc["entities"] = {**(state.doc.get("entities") or {}),
                           entity: at_step(state.policy(entity), step_below(rollout), at, version)}
        doc.update(changed_at=at, changed_by=WHO, reason=f"{entity} broke a limit at {rollout:g}% of readers")
        return doc, "3", f"{entity} reads on DynamoDB {rollout:g}% -> {step_below(rollout):g}% of readers"
    doc = next_doc(state, 2, WHO, f"{entity} broke a limit in phase 3", False)
    return doc, "2", "phase 3 -> 2: reads from MySQL only"


def _brief(evidence: dict) -> str:
    d, m = evidence.get("dynamodb", {}), evidence.get("mysql", {})
    return (f"{evidence.get('compared')} compared, {evidence.get('mismatches')} mismatches; DynamoDB {d.get('reads')}"
            f" reads, error rate {d.get('error_rate')}, p99 {d.get('p99_ms')} ms; MySQL p99 {m.get('p99_ms')} ms")


class Watch:
    """A worker's thread: adds its evidence to MySQL's every SHOP_GUARD_INTERVAL_MS, then lets
    the guard look. Holds the application's parts weakly, so a dropped application (tests)
    ends its thread."""

    def __init__(self, evidence, guard: Guard | None, interval_s: float):
        self._evidence, self._guard = weakref.ref(evidence), (weakref.ref(guard) if guard else None)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None:  # every request asks; only the first starts it
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="migration-watch", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        failing = False
        while not self._stop.wait(self.interval_s):
            evidence, guard = self._evidence(), self._guard() if self._guard else None
            if evidence is None:
                return
            try:
                with suppress_instrumentation():  # a look every second is not a trace worth keeping
                    evidence.flush()
                    if guard is not None:
                        guard.check()
                failing = False
            except Exception as exc:  # noqa: BLE001 - looks again next time
                if not failing:
                    log.warning("the guard could not look", extra={"event": "guard", "error_type": type(exc).__name__})
                failing = True
            del evidence, guard
