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
from .directions import TO_DYNAMODB, TO_MYSQL
from .state import ConcurrentChange, PhaseState, flags_of, iso, now, parse, shown, update_state

log = logging.getLogger("shop.migration")
tracer = trace.get_tracer("shop.migration")


@dataclass(frozen=True)
class Gate:
    name: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


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


def _agree(check: dict) -> str:
    """A clean verify's detail: differences of entities written since (journaled, waiting for
    their copy) are not divergence; the pending-writes gates beside it wait for them."""
    late = check.get("written_since")
    return f"{check.get('compared')} compared, 0 divergent" + (
        f", {late} written since (journaled: copied by `repair` or the late copy)" if late else "")


def _plain(line: str) -> None:
    """Progress lines of the runs a transition makes: dropped unless a caller shows them."""


class PhaseControl:
    def __init__(self, shop_state):
        self.shop = shop_state
        self.runtime = shop_state.runtime
        self.view = self.runtime.phase
        self.store = self.view.store
        self.settings = shop_state.settings

    @property
    def propagation(self) -> timedelta:
        """How long until every worker routes by a newly stored phase (two refresh periods)."""
        return timedelta(seconds=2 * self.settings.phase_refresh_s)

    # --- reading ------------------------------------------------------------------------

    def status(self, with_gates: bool = True) -> dict:
        current = self.view.refresh()
        out = {**current.as_dict(), "pinned": self.runtime.pinned, "pending": self.runtime.journal.counts(),
               "refresh_s": self.settings.phase_refresh_s, "history": self.store.history(10)}
        if with_gates:
            p = current.phase or 1
            out["next"] = ({"to": p + 1, "gates": [g.as_dict() for g in self.gates(current, p + 1, dry=True)]}
                           if p < 5 else None)
            out["previous"] = ({"to": p - 1, "gates": [g.as_dict() for g in self.gates(current, p - 1, dry=True)]}
                               if p > 1 else None)
        return out

    # --- the gates ----------------------------------------------------------------------

    def gates(self, current: PhaseState, target: int, dry: bool = False, progress=_plain) -> list[Gate]:
        """What must hold to move from `current` to `target`. With `dry`, the transition
        steps whose outcome is a gate (the copy back out of 5) are described, not run."""
        source = current.phase
        out: list[Gate] = []
        if source is not None and target > source + 1:
            out.append(Gate("one step at a time", False, f"move to {source + 1} first; forward phases are "
                                                        "entered one by one, each behind its own gates"))
        if source is None and target > 2:
            out.append(Gate("one step at a time", False, f"the server runs a custom mix ({current.flags}): "
                                                        "store phase 1 or 2 first, then move on step by step"))
        if target >= 2 and (source is None or source < target):
            out.append(self._tables_gate())
        if target == 3 and (source is None or source < 3):
            out += self._backfill_gates(current)
        if target == 4 and (source is None or source < 4):
            out += self._comparison_gates(current)
        if target == 5 and (source is None or source < 5):
            out.append(self._pending_gate(TO_DYNAMODB, "no write waiting to reach DynamoDB"))
            out.append(self._pending_gate(TO_MYSQL, "no write waiting to reach MySQL"))
            out.append(self._verified_since(current, "phase 4"))
            out.append(Gate("DynamoDB's id counters raised above MySQL's ids", True,
                            "done by the transition itself, just before the switch"))
        if source == 5 and target < 5:
            out += self._leave_five(dry, progress)
        return out

    def _tables_gate(self) -> Gate:
        from ..repositories.dynamodb.tables import SPEC
        dynamo = self.shop.dynamo
        missing = []
        try:
            for name in SPEC:
                status = dynamo.call("describe_table", TableName=dynamo.table(name))["Table"]["TableStatus"]
                if status != "ACTIVE":
                    missing.append(f"{dynamo.table(name)} is {status}")
        except Exception as exc:  # noqa: BLE001 - the gate says why
            return Gate("DynamoDB tables reachable", False, f"{type(exc).__name__}: {exc}"[:300]
                        + " (run `flask --app shop ddb-create-tables`)")
        return Gate("DynamoDB tables reachable", not missing, "; ".join(missing) or "all tables active")

    def _pending_gate(self, direction: str, name: str) -> Gate:
        count = self.runtime.journal.count(direction)
        ok = count == 0
        return Gate(name, ok, "none pending" if ok else f"{count} pending: run `flask --app shop repair`")

    def _backfill_gates(self, current: PhaseState) -> list[Gate]:
        since = parse(current.doc.get("dual_write_since"))
        backfill, check = current.mark("backfill"), current.mark("verify")
        started, completed = parse(backfill.get("started_at")), parse(backfill.get("completed_at"))
        if since is None and current.source != "stored" and current.flags.dual_write:
            g1 = Gate("backfill after dual writing began", False,
                      "the phase comes from SHOP_FLAGS, so when dual writing began is unknown: record it with "
                      "`flask --app shop phase set 2 --reason ...`, then backfill and verify")
        elif since is None:
            g1 = Gate("backfill after dual writing began", False, "dual writing (phase 2) has not begun")
        elif started is None or started < since + self.propagation:
            g1 = Gate("backfill after dual writing began", False,
                      f"dual writing began {shown(since)}; run `flask --app shop backfill` (it must start after "
                      f"{shown(since + self.propagation)}, when every worker dual-writes)")
        elif backfill.get("failed"):
            g1 = Gate("backfill after dual writing began", False, f"the last backfill had {backfill['failed']} failures")
        else:
            g1 = Gate("backfill after dual writing began", True, f"backfill finished {shown(completed)}")
        verified = parse(check.get("started_at"))
        if completed is None or verified is None or verified < completed:
            g2 = Gate("verify clean after the backfill", False, "run `flask --app shop verify` after the backfill")
        elif check.get("divergent") or check.get("failed"):
            g2 = Gate("verify clean after the backfill", False,
                      f"{check.get('divergent')} divergent: run `flask --app shop repair --divergent`, then verify")
        else:
            g2 = Gate("verify clean after the backfill", True, _agree(check))
        return [g1, g2, self._pending_gate(TO_DYNAMODB, "no write waiting to reach DynamoDB"),
                self._pending_gate(TO_MYSQL, "no write waiting to reach MySQL")]

    def _verified_since(self, current: PhaseState, what: str) -> Gate:
        """DynamoDB is about to be the only store written: it must hold what MySQL holds now
        (mirrors can land out of order; verify is what proves they did not)."""
        since = parse(current.doc.get("phase_since"))
        check = current.mark("verify")
        started = parse(check.get("started_at"))
        name = f"verify clean since entering {what}"
        if since is None or started is None or started < since:
            return Gate(name, False, "run `flask --app shop verify`")
        if check.get("divergent") or check.get("failed"):
            return Gate(name, False, f"{check.get('divergent')} divergent: `flask --app shop repair --divergent`, "
                                     "then verify")
        return Gate(name, True, _agree(check))

    def _comparison_gates(self, current: PhaseState) -> list[Gate]:
        since = parse(current.doc.get("phase_since")) if current.phase == 3 else None
        window = timedelta(seconds=self.settings.gate_compare_window_s)
        if since is None:
            return [Gate("phase 3 comparisons over a recent window", False, "the server is not in phase 3")]
        held = now() - since
        g1 = Gate("phase 3 held for the comparison window", held >= window,
                  f"held {int(held.total_seconds())} s of {int(window.total_seconds())} s")
        try:
            n = self.store.mismatches_since(since)
            g2 = Gate("no dual-read mismatch in phase 3", n == 0, f"{n} mismatches since {shown(since)}" if n else
                      "none recorded")
        except Exception as exc:  # noqa: BLE001
            g2 = Gate("no dual-read mismatch in phase 3", False, f"cannot read: {type(exc).__name__}")
        return [g1, g2, self._pending_gate(TO_DYNAMODB, "no write waiting to reach DynamoDB"),
                self._pending_gate(TO_MYSQL, "no write waiting to reach MySQL")]

    def _leave_five(self, dry: bool, progress) -> list[Gate]:
        if dry:
            pending = self.runtime.journal.count(TO_MYSQL)
            return [Gate("DynamoDB-only writes copied back to MySQL", True,
                         f"{pending} entities to copy back: done by the transition itself"),
                    Gate("verify clean after the copy back", True, "checked by the transition itself")]
        copied = jobs.reverse_copy(self.shop, progress=progress)
        g1 = Gate("DynamoDB-only writes copied back to MySQL", not copied.failed,
                  f"{copied.done['copied']} copied, {copied.done['deleted']} deleted, {len(copied.failed)} failed"
                  + (f": {copied.failed[0][0]} {copied.failed[0][1]}: {copied.failed[0][2]}" if copied.failed else ""))
        checked = jobs.verify(self.shop, control=self, progress=progress)
        # Phase 5 goes on serving while this runs: what it wrote since the copy differs, but is
        # journaled and copied right after the switch. Only an unjournaled difference refuses.
        late = jobs.journaled(self.runtime.journal, checked.divergent)
        lost = [d for d in checked.divergent if d not in late]
        g2 = Gate("verify clean after the copy back", not lost and not checked.failed,
                  f"{sum(checked.compared.values())} compared, {len(lost)} divergent, {len(late)} written since the "
                  "copy (journaled: copied after the switch)"
                  + (": " + ", ".join(f"{e} {i}" for e, i, _, _ in lost[:5]) if lost else ""))
        return [g1, g2]

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
        if target not in (1, 2, 3, 4, 5) or self.runtime.pinned:  # refused before any gate, audited all the same
            why = (f"there is no phase {target}: phases are 1 to 5" if target not in (1, 2, 3, 4, 5) else
                   "the server pins its flags (SHOP_FLAGS_PINNED): unpin them to change the phase")
            self.store.audit({"who": who, "from": self.view.current().label, "to": target, "forced": False,
                              "reason": reason, "gates": [Gate(why, False).as_dict()], "outcome": "refused"})
            return Result(False, why)
        current = self.view.refresh()
        unrecorded = current.source != "stored" or (current.flags.dual_write and not current.doc.get("dual_write_since"))
        if current.phase == target and not unrecorded:
            return Result(True, f"already in phase {target}", state=current)
        if current.phase == target:  # from SHOP_FLAGS: store it, so its start is on record
            gates = []
            doc = self._next_doc(current, target, who, reason, False)
            doc["dual_write_since"] = doc["phase_since"] if current.flags.dual_write else None
            try:
                self.store.save(doc, current.version)
            except ConcurrentChange as exc:
                return Result(False, str(exc), [], current)
            self.store.audit({"who": who, "from": current.label, "to": target, "forced": False, "reason": reason,
                              "gates": [], "outcome": "recorded"})
            return Result(True, f"phase {target} (from SHOP_FLAGS) recorded", gates, self.view.refresh())
        gates = self.gates(current, target, progress=progress)
        refused = [g for g in gates if not g.ok]
        entry = {"who": who, "from": current.label, "to": target, "forced": bool(force and refused),
                 "reason": reason, "gates": [g.as_dict() for g in gates]}
        if refused and not force:
            self.store.audit({**entry, "outcome": "refused"})
            emit(log, logging.WARNING, "phase change refused", {"event": "phase", "from": current.label, "to": target,
                                                                "who": who, "refused_by": [g.name for g in refused],
                                                                "reason": reason})
            return Result(False, f"phase {target} refused: " + "; ".join(f"{g.name} ({g.detail})" for g in refused),
                          gates, current)
        if target == 5 and current.phase != 5:
            seeded = copies.seed_counters_from_mysql(self.shop.db, self.shop.dynamo, self.settings.id_gap)
            gates = [g if not g.name.startswith("DynamoDB's id counters") else
                     Gate(g.name, True, ", ".join(f"{k} {v[1]} (MySQL max {v[0]})" for k, v in seeded.items()))
                     for g in gates]
            entry["gates"] = [g.as_dict() for g in gates]
        latest = self.view.refresh()  # the steps may have left marks (verify) since it was read
        if latest.flags != current.flags:
            return Result(False, "the phase changed meanwhile; read it again", gates, latest)
        current = latest
        doc = self._next_doc(current, target, who, reason, bool(force and refused))
        if doc.get("mysql_behind_since") and current.flags.write_mysql and self.runtime.journal.count(TO_MYSQL) == 0:
            doc["mysql_behind_since"] = None  # caught up since (a copy back that failed late, then `repair`)
        try:
            version = self.store.save(doc, current.version)
        except ConcurrentChange as exc:
            return Result(False, str(exc), gates, current)
        self.store.audit({**entry, "outcome": "forced" if force and refused else "changed"})
        new = self.view.refresh()
        emit(log, logging.WARNING, "migration phase changed", {
            "event": "phase", "from": current.label, "to": str(target), "who": who, "forced": bool(force and refused),
            "version": version, "reason": reason, "gates": [f"{'ok' if g.ok else 'refused'}: {g.name}" for g in gates]})
        message = f"phase {current.label} -> {target}" + (" (forced past: " + ", ".join(
            g.name for g in refused) + ")" if refused else "")
        if current.phase == 5 and settle:
            # Workers still in phase 5 for up to two refresh periods may write DynamoDB alone:
            # wait them out, then copy those writes back too.
            time.sleep(self.propagation.total_seconds())
            try:
                late = self.catch_up(progress)
            except Exception as exc:  # noqa: BLE001 - switched already: say what is left, never hide the switch
                emit(log, logging.ERROR, "late copy back failed", {"event": "phase", "error_type": type(exc).__name__,
                                                                   "error": str(getattr(exc, "cause", None) or exc)[:300]},
                     exc_info=True)
                return Result(True, message + f"; the late copy back failed ({type(exc).__name__}: {exc}): run"
                              " `flask --app shop reverse-copy` (journaled writes stay pending until it succeeds)",
                              gates, new, bool(force and refused))
            message += f"; {late.done['copied']} late DynamoDB-only writes copied back"
            if late.failed:  # switched all the same: they stay journaled for `flask repair`
                message += (f"; {len(late.failed)} could not be copied and stay pending "
                            f"(first: {late.failed[0][0]} {late.failed[0][1]}: {late.failed[0][2]})")
            new = self.view.refresh()
            if new.doc.get("mysql_behind_since"):
                message += ("; MySQL is still catching up: writes touching what it lacks go to DynamoDB first"
                            " until `flask --app shop reverse-copy` empties the journal")
        return Result(True, message, gates, new, bool(force and refused))

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
        flags = flags_of(target)
        doc = dict(current.doc)
        at = iso(now())
        doc.update(flags=str(flags), phase=target, changed_at=at, changed_by=who, reason=reason, forced=forced,
                   phase_since=at)
        if not flags.write_mysql:
            doc["mysql_behind_since"] = None  # MySQL is not written: nothing routes around it
        elif not current.flags.write_mysql:
            # MySQL lacks what DynamoDB took alone until the late copy ends (shop.migration.catchup).
            doc["mysql_behind_since"] = at
        if not flags.dual_write:
            doc["dual_write_since"] = None
        elif not current.flags.dual_write or not doc.get("dual_write_since"):
            doc["dual_write_since"] = at
        doc.setdefault("marks", {})
        doc.setdefault("entities", {})
        doc.setdefault("read_rollout_percent", None)
        return doc

    def mark(self, name: str, data: dict) -> None:
        """Record a run (backfill, verify) in the state, retrying a concurrent change."""
        def add(current):
            # Marks never store a phase: with none stored, SHOP_FLAGS keeps applying.
            doc = {**current.doc} if current.version else {"flags": None}
            doc["marks"] = {**doc.get("marks", {}), name: data}
            return doc
        update_state(self.view, add)
