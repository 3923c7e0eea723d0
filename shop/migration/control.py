"""Changing the server-wide phase: gates, transition steps, audit. The CLI (`flask phase`) and
the flag page both call `PhaseControl.set`, so an operator meets the same rules in either.

Forward, one step at a time, each step proving the store about to be trusted more holds the
data; back, any number of steps, and leaving phase 5 first copies to MySQL what only DynamoDB
received. `force` overrides a refusing gate, and says so in the audit trail; it never skips a
transition step (raising the counters, the copy back).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from opentelemetry import trace

from observability.events import emit

from . import copies, jobs
from .directions import TO_MYSQL
from ..aspects.exposure import MODES
from . import entities
from .gates import PHASES, Gate, Move, counters_raised, evaluate, evaluate_canary
from .evidence import EntityEvidence
from .state import ConcurrentChange, PhaseState, at_step, iso, next_doc, now, update_state

log = logging.getLogger("shop.migration")
tracer = trace.get_tracer("shop.migration")


@dataclass
class Result:
    ok: bool
    message: str
    gates: list = field(default_factory=list)
    state: PhaseState | None = None
    forced: bool = False

    def as_dict(self) -> dict:
        return {"ok": self.ok, "message": self.message, "forced": self.forced,
                "gates": [g.as_dict() for g in self.gates], "state": self.state.as_dict() if self.state else None}


def _plain(line: str) -> None:
    """Progress lines of the runs a transition makes: dropped unless a caller shows them."""


class PhaseControl:
    def __init__(self, shop_state):
        self.shop = shop_state
        self.runtime = shop_state.runtime
        self.view = self.runtime.phase
        self.store = self.view.store
        self.settings = shop_state.settings
        self.evidence = self.runtime.evidence

    @property
    def propagation(self) -> timedelta:
        """How long until every worker routes by a newly stored phase (two refresh periods)."""
        return timedelta(seconds=2 * self.settings.phase_refresh_s)

    # --- reading ------------------------------------------------------------------------

    def status(self, with_gates: bool = True) -> dict:
        current = self.view.refresh()
        out = {**current.as_dict(), "pinned": self.runtime.pinned, "pending": self.runtime.journal.counts(),
               "refresh_s": self.settings.phase_refresh_s, "history": self.store.history(10)}
        out["exposure"] = self.exposure(current)
        if with_gates:
            p = current.phase or 1
            out["next"] = ({"to": p + 1, "gates": [g.as_dict() for g in self.gates(current, p + 1, dry=True)]}
                           if p < 5 else None)
            out["previous"] = ({"to": p - 1, "gates": [g.as_dict() for g in self.gates(current, p - 1, dry=True)]}
                               if p > 1 else None)
        return out

    def exposure(self, current: PhaseState) -> list[dict]:
        """Per entity: how far its reads are exposed now, and the evidence since its step began."""
        try:
            found = self.evidence.at_steps(current, entities.NAMES)
        except Exception:  # noqa: BLE001 - no evidence table yet, or MySQL down: nothing to show
            found = {}
        rows = []
        for name in entities.NAMES:
            policy = self.runtime.exposure(name)
            ev = found.get(name) or EntityEvidence(name)
            rows.append({"entity": name, **policy.as_dict(), "serves": policy.serves(current.phase),
                         "since": iso(current.step_of(name)[0]), "compared_now": current.flags.dual_read,
                         "evidence": ev.as_dict()})
        return rows

    # --- the gates ----------------------------------------------------------------------

    def gates(self, current: PhaseState, target: int, dry: bool = False, progress=_plain) -> list[Gate]:
        """What must hold to move from `current` to `target` (the table in gates.py). With
        `dry`, the transition steps whose outcome is a gate (the copy back out of 5) are
        described, not run."""
        return evaluate(Move(self, current, target, dry, progress))

    # --- changing -----------------------------------------------------------------------

    def set(self, target: int, who: str, force: bool = False, reason: str = "", progress=_plain,
            settle: bool = True) -> Result:
        with tracer.start_as_current_span("migration.phase.set") as span:
            span.set_attributes({"shop.phase.to": target, "shop.phase.who": who, "shop.phase.forced": force})
            result = self._set(target, who, force, reason, progress, settle)
            span.set_attributes({"shop.phase.outcome": "changed" if result.ok else "refused",
                                 "shop.phase.from": result.state.label if result.state else ""})
            return result

    def _set(self, target, who, force, reason, progress, settle) -> Result:
        impossible = self._impossible(target)
        if impossible:  # refused before any gate, audited all the same
            self.store.audit({"who": who, "from": self.view.current().label, "to": target, "forced": False,
                              "reason": reason, "gates": [Gate(impossible, False).as_dict()], "outcome": "refused"})
            return Result(False, impossible)
        current = self.view.refresh()
        unrecorded = current.source != "stored" or (current.flags.dual_write and not current.doc.get("dual_write_since"))
        if current.phase == target:
            if unrecorded:  # from SHOP_FLAGS: store it, so its start is on record
                return self._record(current, target, who, reason)
            return Result(True, f"already in phase {target}", state=current)
        gates = self.gates(current, target, progress=progress)
        refused = [g for g in gates if not g.ok]
        forced = bool(force and refused)
        entry = {"who": who, "from": current.label, "to": target, "forced": forced, "reason": reason}
        if refused and not force:
            return self._refuse(entry, current, gates, refused)
        if target == 5 and current.phase != 5:
            gates = self._raise_counters(gates)
        result = self._switch(entry, current, target, gates, refused)
        if result.ok and current.phase == 5 and settle:
            return self._settle(result, progress)
        return result

    def _impossible(self, target) -> str:
        """Why no gate can let this move through, or ''."""
        if target not in PHASES:
            return f"there is no phase {target}: phases are 1 to 5"
        if self.runtime.pinned:
            return "the server pins its flags (SHOP_FLAGS_PINNED): unpin them to change the phase"
        return ""

    def _record(self, current: PhaseState, target: int, who: str, reason: str) -> Result:
        """Store the phase SHOP_FLAGS gives, with when dual writing began (its gates' evidence)."""
        doc = self._next_doc(current, target, who, reason, False)
        doc["dual_write_since"] = doc["phase_since"] if current.flags.dual_write else None
        try:
            self.store.save(doc, current.version)
        except ConcurrentChange as exc:
            return Result(False, str(exc), [], current)
        self.store.audit({"who": who, "from": current.label, "to": target, "forced": False, "reason": reason,
                          "gates": [], "outcome": "recorded"})
        return Result(True, f"phase {target} (from SHOP_FLAGS) recorded", [], self.view.refresh())

    def _refuse(self, entry: dict, current: PhaseState, gates: list[Gate], refused: list[Gate]) -> Result:
        self.store.audit({**entry, "gates": [g.as_dict() for g in gates], "outcome": "refused"})
        emit(log, logging.WARNING, "phase change refused", {
            "event": "phase", "from": current.label, "to": entry["to"], "who": entry["who"],
            "refused_by": [g.name for g in refused], "reason": entry["reason"]})
        return Result(False, f"phase {entry['to']} refused: " + "; ".join(f"{g.name} ({g.detail})" for g in refused),
                      gates, current)

    def _raise_counters(self, gates: list[Gate]) -> list[Gate]:
        """Into phase 5: DynamoDB's counters above MySQL's ids, just before the switch; its gate
        says to what."""
        seeded = copies.seed_counters_from_mysql(self.shop.db, self.shop.dynamo, self.settings.id_gap)
        done = ", ".join(f"{k} {v[1]} (MySQL max {v[0]})" for k, v in seeded.items())
        return [Gate(g.name, True, done) if g.name == counters_raised.name else g for g in gates]

    def _switch(self, entry: dict, current: PhaseState, target: int, gates: list[Gate], refused) -> Result:
        """Store the new phase, if nobody changed it since it was read (the steps may have left
        marks, verify, meanwhile: those are no change of phase)."""
        latest = self.view.refresh()
        if latest.flags != current.flags:
            return Result(False, "the phase changed meanwhile; read it again", gates, latest)
        forced = entry["forced"]
        doc = self._next_doc(latest, target, entry["who"], entry["reason"], forced)
        if doc.get("mysql_behind_since") and latest.flags.write_mysql and self.runtime.journal.count(TO_MYSQL) == 0:
            doc["mysql_behind_since"] = None  # caught up since (a copy back that failed late, then `repair`)
        try:
            version = self.store.save(doc, latest.version)
        except ConcurrentChange as exc:
            return Result(False, str(exc), gates, latest)
        self.store.audit({**entry, "gates": [g.as_dict() for g in gates], "outcome": "forced" if forced else "changed"})
        emit(log, logging.WARNING, "migration phase changed", {
            "event": "phase", "from": latest.label, "to": str(target), "who": entry["who"], "forced": forced,
            "version": version, "reason": entry["reason"],
            "gates": [f"{'ok' if g.ok else 'refused'}: {g.name}" for g in gates]})
        message = f"phase {latest.label} -> {target}" + (
            " (forced past: " + ", ".join(g.name for g in refused) + ")" if refused else "")
        return Result(True, message, gates, self.view.refresh(), forced)

    def _settle(self, result: Result, progress) -> Result:
        """Out of phase 5: workers still in it for up to two refresh periods may write DynamoDB
        alone; wait them out, then copy those writes back too."""
        time.sleep(self.propagation.total_seconds())
        try:
            late = self.catch_up(progress)
        except Exception as exc:  # noqa: BLE001 - switched already: say what is left, never hide the switch
            emit(log, logging.ERROR, "late copy back failed", {"event": "phase", "error_type": type(exc).__name__,
                                                               "error": str(getattr(exc, "cause", None) or exc)[:300]},
                 exc_info=True)
            result.message += (f"; the late copy back failed ({type(exc).__name__}: {exc}): run"
                               " `scripts/flask.sh reverse-copy` (journaled writes stay pending until it succeeds)")
            return result
        result.message += f"; {late.done['copied']} late DynamoDB-only writes copied back"
        if late.failed:  # switched all the same: they stay journaled for `flask repair`
            result.message += (f"; {len(late.failed)} could not be copied and stay pending "
                               f"(first: {late.failed[0][0]} {late.failed[0][1]}: {late.failed[0][2]})")
        result.state = self.view.refresh()
        if result.state.doc.get("mysql_behind_since"):
            result.message += ("; MySQL is still catching up: writes touching what it lacks go to DynamoDB first"
                               " until `scripts/flask.sh reverse-copy` empties the journal")
        return result

    # --- exposing reads gradually (shop.aspects.exposure) ---------------------------------

    def expose(self, names, who: str, *, compare_percent: float | None = None, compare_mode: str | None = None,
               rollout: float | None = None, force: bool = False, reason: str = "") -> Result:
        """Change how far the entities' reads are exposed: the share of requests compared, how
        (inline or shadow), the share of readers DynamoDB serves in phase 3. Raising a canary is
        gated on the evidence at its current step (gates.CANARY_UP); the rest is not. Audited."""
        with tracer.start_as_current_span("migration.exposure.set") as span:
            span.set_attributes({"shop.exposure.entities": ",".join(names), "shop.phase.who": who})
            problem = self._exposure_problem(names, compare_percent, compare_mode, rollout)
            current = self.view.refresh()
            if problem:
                self.store.audit({"who": who, "from": current.label, "to": current.label, "forced": False,
                                  "reason": reason, "gates": [Gate(problem, False).as_dict()], "outcome": "refused"})
                return Result(False, problem, state=current)
            what = _describe_exposure(names, compare_percent, compare_mode, rollout)
            doc = _exposed(current, names, compare_percent, compare_mode, rollout, who)
            if current.version and doc.get("entities") == (current.doc.get("entities") or {}):
                # Sent again unchanged: no save, no audit entry crowding out the real changes.
                return Result(True, f"{what}: already so, nothing changed", [], current)
            gates = self._canary_gates(current, names, rollout)
            refused = [g for g in gates if not g.ok]
            entry = {"who": who, "from": current.label, "to": current.label, "forced": bool(force and refused),
                     "reason": f"{what}; {reason}" if reason else what, "gates": [g.as_dict() for g in gates]}
            if refused and not force:
                self.store.audit({**entry, "outcome": "refused"})
                return Result(False, f"{what} refused: " + "; ".join(f"{g.name} ({g.detail})" for g in refused),
                              gates, current)
            try:
                self.store.save(doc, current.version)
            except ConcurrentChange as exc:
                return Result(False, str(exc), gates, current)
            self.store.audit({**entry, "outcome": "forced" if force and refused else "exposed"})
            emit(log, logging.WARNING, "read exposure changed", {"event": "exposure", "who": who, "what": what,
                                                                 "forced": bool(force and refused), "reason": reason})
            return Result(True, what, gates, self.view.refresh(), bool(force and refused))

    def _canary_gates(self, current: PhaseState, names, rollout) -> list[Gate]:
        """The gates of every canary this change raises (lowering one is never gated)."""
        raised = [n for n in names if rollout is not None and rollout > current.rollout(n)]
        return [g for name in raised for g in evaluate_canary(Move(self, current, current.phase or 0, entity=name))]

    def _exposure_problem(self, names, compare_percent, compare_mode, rollout) -> str:
        if self.runtime.pinned:
            return "the server pins its flags (SHOP_FLAGS_PINNED): unpin them to change how reads are exposed"
        unknown = [n for n in names if n not in entities.NAMES]
        if unknown or not names:
            return f"no entity {', '.join(unknown) or '(none given)'}: entities are {', '.join(entities.NAMES)} or all"
        for label, value in (("compare percent", compare_percent), ("read rollout percent", rollout)):
            if value is not None and not 0 <= value <= 100:
                return f"the {label} must be between 0 and 100, got {value:g}"
        if compare_mode is not None and compare_mode not in MODES:
            return f"the compare mode must be {' or '.join(MODES)}, got {compare_mode!r}"
        if compare_percent is None and compare_mode is None and rollout is None:
            return "nothing to change: give a compare percent, a compare mode or a read rollout percent"
        return ""

    def catch_up(self, progress=_plain, passes: int = 5):
        """Copy back what DynamoDB took alone, again while writers add to it (each pass is what
        the last one left); once the journal towards MySQL is empty, MySQL is no longer behind."""
        copied, late = 0, None
        for n in range(passes):
            late = jobs.reverse_copy(self.shop, progress=progress, missing=n == 0, raise_ids=False)
            copied += late.done["copied"]
            if self.runtime.journal.count(TO_MYSQL) == 0:
                break
        late.done["copied"] = copied  # what every pass copied; failures are the last pass's
        # Once, after the passes: writes sent to DynamoDB first took ids from its counters, and
        # MySQL must hand out none of them once writes go MySQL first again.
        copies.raise_auto_increment(self.shop.db, self.shop.dynamo, self.settings.id_gap)
        self.caught_up()
        return late

    def caught_up(self) -> bool:
        """Clear 'MySQL is behind' once nothing is journaled towards it; True when cleared."""
        def clear(current):
            if not current.doc.get("mysql_behind_since") or self.runtime.journal.count(TO_MYSQL) != 0:
                return None
            return {**current.doc, "mysql_behind_since": None}
        try:
            cleared = update_state(self.view, clear)
        except ConcurrentChange:
            return False
        if cleared is not None:
            emit(log, logging.WARNING, "MySQL caught up", {"event": "phase", "phase": cleared.label,
                                                          "since": cleared.doc.get("mysql_behind_since")})
        return not self.view.current().doc.get("mysql_behind_since")

    def _next_doc(self, current: PhaseState, target: int, who: str, reason: str, forced: bool) -> dict:
        return next_doc(current, target, who, reason, forced)

    def mark(self, name: str, data: dict) -> None:
        """Record a run (backfill, verify) in the state, retrying a concurrent change."""
        def add(current):
            # Marks never store a phase: with none stored, SHOP_FLAGS keeps applying.
            doc = {**current.doc} if current.version else {"flags": None}
            doc["marks"] = {**doc.get("marks", {}), name: data}
            return doc
        update_state(self.view, add)


def _describe_exposure(names, compare_percent, compare_mode, rollout) -> str:
    parts = ([f"compare {compare_percent:g}% of requests"] if compare_percent is not None else []) + \
        ([f"{compare_mode} comparisons"] if compare_mode else []) + \
        ([f"DynamoDB serves {rollout:g}% of readers"] if rollout is not None else [])
    return f"{', '.join(names)}: {', '.join(parts)}"


def _exposed(current: PhaseState, names, compare_percent, compare_mode, rollout, who: str) -> dict:
    """The document with the entities' new exposure; a canary that moves restarts its evidence."""
    at = iso(now())
    doc = dict(current.doc) if current.version else {"flags": None}
    policies = dict(doc.get("entities") or {})
    for name in names:
        policy = dict(policies.get(name) or {})
        if compare_percent is not None:
            policy["compare_percent"] = compare_percent
        if compare_mode is not None:
            policy["compare_mode"] = compare_mode
        if rollout is not None and rollout != current.rollout(name):
            policy = at_step(policy, rollout, at, current.version + 1)  # a new step: new evidence
        policies[name] = policy
    doc["entities"] = policies
    doc["exposure_changed_at"], doc["exposure_changed_by"] = at, who
    return doc
