"""The gates of a phase change, as data: each gate a named check, each move a row of the table
docs/enable-flags.md prints ("Move | Gates | Steps the move takes itself"). `PhaseControl` reads
the row for the move asked and runs its gates; adding a gate is one function and one row entry.

A check takes the move under way (`Move`: the control, the state read, the target, whether it is
a dry run) and answers `(ok, detail)`; `Check` turns that into the `Gate` the audit trail, the
CLI and the flag page show.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from ..repositories.dynamodb.tables import SPEC
from . import jobs
from .directions import TO_DYNAMODB, TO_MYSQL, Direction
from .evidence import EntityEvidence
from .limits import Limits
from .state import PhaseState, now, parse, shown

PHASES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Gate:
    """One gate's verdict on one move."""
    name: str
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Move:
    """A phase change (or a canary's step up) being considered: what the gates look at."""
    control: object            # shop.migration.control.PhaseControl
    current: PhaseState
    target: int
    dry: bool = False          # describe the steps whose outcome is a gate, do not run them
    progress: Callable = lambda line: None
    entity: str | None = None  # a canary's step up: the entity whose reads DynamoDB serves more of

    @property
    def source(self) -> int | None:
        return self.current.phase

    @property
    def forward(self) -> bool:
        return self.source is None or self.source < self.target


@dataclass(frozen=True)
class Check:
    name: str
    test: Callable[[Move], tuple[bool, str]]

    def __call__(self, move: Move) -> Gate:
        ok, detail = self.test(move)
        return Gate(self.name, ok, detail)


def gate(name: str):
    """Declare a check: `@gate("what must hold")` over `def check(move) -> (ok, detail)`."""
    return lambda test: Check(name, test)


def _agree(check: dict) -> str:
    """A clean verify's detail: differences of entities written since (journaled, waiting for
    their copy) are not divergence; the pending-writes gates beside it wait for them."""
    late = check.get("written_since")
    return f"{check.get('compared')} compared, 0 divergent" + (
        f", {late} written since (journaled: copied by `repair` or the late copy)" if late else "")


def _divergent(check: dict) -> str:
    return f"{check.get('divergent')} divergent: run `scripts/flask.sh repair --divergent`, then verify"


# --- the gates ----------------------------------------------------------------------------

@gate("DynamoDB tables reachable")
def tables_reachable(move: Move):
    dynamo = move.control.shop.dynamo
    missing = []
    try:
        for name in SPEC:
            status = dynamo.call("describe_table", TableName=dynamo.table(name))["Table"]["TableStatus"]
            if status != "ACTIVE":
                missing.append(f"{dynamo.table(name)} is {status}")
    except Exception as exc:  # noqa: BLE001 - the gate says why
        return False, f"{type(exc).__name__}: {exc}"[:300] + " (run `scripts/flask.sh ddb-create-tables`)"
    return not missing, "; ".join(missing) or "all tables active"


def nothing_waiting(direction: Direction) -> Check:
    """No journaled write waiting to reach the direction's target."""
    def test(move: Move):
        count = move.control.runtime.journal.count(direction)
        return count == 0, ("none pending" if count == 0 else f"{count} pending: run `scripts/flask.sh repair`")
    return Check(f"no write waiting to reach {'DynamoDB' if direction.target == 'dynamodb' else 'MySQL'}", test)


@gate("backfill after dual writing began")
def backfilled_after_dual_writes(move: Move):
    current, propagation = move.current, move.control.propagation
    since = parse(current.doc.get("dual_write_since"))
    backfill = current.mark("backfill")
    completed = parse(backfill.get("completed_at"))
    if since is None and current.source != "stored" and current.flags.dual_write:
        return False, ("the phase comes from SHOP_FLAGS, so when dual writing began is unknown: record it with "
                       "`scripts/flask.sh phase set 2 --reason ...`, then backfill and verify")
    if since is None:
        return False, "dual writing (phase 2) has not begun"
    if not _after_dual_writes_began(move):
        return False, (f"dual writing began {shown(since)}; run `scripts/flask.sh backfill` (it must start after "
                       f"{shown(since + propagation)}, when every worker dual-writes)")
    if backfill.get("failed"):
        return False, f"the last backfill had {backfill['failed']} failures"
    return True, f"backfill finished {shown(completed)}"


def _after_dual_writes_began(move: Move) -> bool:
    """Whether the last backfill started once every worker was dual-writing."""
    since = parse(move.current.doc.get("dual_write_since"))
    started = parse(move.current.mark("backfill").get("started_at"))
    return since is not None and started is not None and started >= since + move.control.propagation


def _compare_all(names) -> str:
    return f"`scripts/flask.sh phase compare {' '.join(names)} --percent 100 --mode shadow`"


def _verified_after(check: dict, since, how: str) -> tuple[bool, str]:
    """A verify that started after `since` and found nothing divergent."""
    started = parse(check.get("started_at"))
    if since is None or started is None or started < since:
        return False, f"run `scripts/flask.sh verify`{how}"
    if check.get("divergent") or check.get("failed"):
        return False, _divergent(check)
    return True, _agree(check)


@gate("verify clean after the backfill")
def verified_after_backfill(move: Move):
    backfill = move.current.mark("backfill")
    if move.current.doc.get("dual_write_since") and not _after_dual_writes_began(move):
        # A backfill from before this dual writing (a return from phase 5) vouches for nothing.
        return False, "waits for a backfill after dual writing began (above), then `scripts/flask.sh verify`"
    return _verified_after(move.current.mark("verify"), parse(backfill.get("completed_at")), " after the backfill")


def _window(move: Move, since: datetime, version: int) -> dict:
    """The evidence of a gate: SHOP_GATE_COMPARE_WINDOW_S back from now (0: all of it), of the
    phase or step that began at `since`, document `version`."""
    window = move.control.settings.gate_compare_window_s
    start = max(since, now() - timedelta(seconds=window)) if window else since
    return move.control.evidence.window(start, version)


def _read_in(found: dict) -> dict:
    return {e: ev for e, ev in sorted(found.items()) if ev.reads("mysql") or ev.reads("dynamodb")}


@gate("enough comparisons of every entity read in phase 3")
def compared_enough(move: Move):
    """Time is not evidence: a quiet night with no reads proves nothing. Every entity that
    served reads in phase 3 must have been compared SHOP_GATE_MIN_COMPARISONS times."""
    since = parse(move.current.doc.get("phase_since")) if move.source == 3 else None
    if since is None:
        return False, "the server is not in phase 3"
    need = move.control.settings.gate_min_comparisons
    read = _read_in(move.control.evidence.window(since, int(move.current.doc.get("phase_version") or 0)))
    if not read:
        return need == 0, ("no reads in phase 3 yet: an idle window proves nothing" if need else
                           "no reads yet (SHOP_GATE_MIN_COMPARISONS=0 asks for none)")
    short = [e for e, ev in read.items() if ev.compared < need]
    found = ", ".join(f"{e} {ev.compared}" + (f" ({ev.mismatches} mismatches)" if ev.mismatches else "")
                      for e, ev in read.items()) + f" compared (at least {need} each)"
    if short:  # a rarely read entity (users) gets there sooner with every read compared
        found += f"; compare more of {' '.join(short)}: {_compare_all(short)}"
    return not short, found


@gate("DynamoDB's errors and latency within limits")
def dynamodb_within_limits(move: Move):
    """Over the gate's window in phase 3, per entity read: DynamoDB's error rate and p99."""
    since = parse(move.current.doc.get("phase_since")) if move.source == 3 else None
    if since is None:
        return False, "the server is not in phase 3"
    limits = Limits.of(move.control.settings)
    read = _read_in(_window(move, since, int(move.current.doc.get("phase_version") or 0)))
    judged = {e: limits.dynamodb(ev) for e, ev in read.items()}
    broken = [(e, v) for e, verdicts in judged.items() for v in verdicts if v.ok is False]
    if broken:
        return False, "; ".join(f"{e}: {v.detail}" for e, v in broken)
    return True, "; ".join(f"{e}: {latency.detail}" for e, (_, latency) in judged.items()) or "no reads"


@gate("no unexplained dual-read mismatch in phase 3")
def no_mismatch_in_three(move: Move):
    """A mismatch recorded in phase 3 refuses the move until a verify that began after it found
    the stores equal (`repair --divergent`, then `verify`): the stores agree now, whatever
    made them differ. Mismatches after that verify refuse again."""
    since = parse(move.current.doc.get("phase_since")) if move.source == 3 else None
    if since is None:
        return False, "the server is not in phase 3"
    check = move.current.mark("verify")
    verified = parse(check.get("started_at"))
    clean = verified is not None and verified > since and not check.get("divergent") and not check.get("failed")
    try:
        n = move.control.store.mismatches_since(verified if clean else since)
        before = move.control.store.mismatches_since(since) - n if clean else 0
    except Exception as exc:  # noqa: BLE001
        return False, f"cannot read: {type(exc).__name__}"
    if n:
        return False, (f"{n} mismatches since {shown(verified if clean else since)}: run `scripts/flask.sh repair"
                       " --divergent`, then `verify`")
    return True, (f"{before} mismatches before the clean verify of {shown(verified)}, none since" if before
                  else "none recorded")


@gate("verify clean since entering phase 4")
def verified_in_four(move: Move):
    """DynamoDB is about to be the only store written: it must hold what MySQL holds now
    (mirrors can land out of order; verify is what proves they did not)."""
    return _verified_after(move.current.mark("verify"), parse(move.current.doc.get("phase_since")), "")


@gate("DynamoDB's id counters raised above MySQL's ids")
def counters_raised(move: Move):
    return True, "done by the transition itself, just before the switch"


@gate("DynamoDB-only writes copied back to MySQL")
def copied_back(move: Move):
    if move.dry:
        pending = move.control.runtime.journal.count(TO_MYSQL)
        return True, f"{pending} entities to copy back: done by the transition itself"
    copied = jobs.reverse_copy(move.control.shop, progress=move.progress)
    first = copied.failed[0] if copied.failed else None
    return not first, (f"{copied.done['copied']} copied, {copied.done['deleted']} deleted, "
                       f"{len(copied.failed)} failed" + (f": {first[0]} {first[1]}: {first[2]}" if first else ""))


@gate("verify clean after the copy back")
def verified_after_copy_back(move: Move):
    if move.dry:
        return True, "checked by the transition itself"
    checked = jobs.verify(move.control.shop, control=move.control, progress=move.progress)
    # Phase 5 goes on serving while this runs: what it wrote since the copy differs, but is
    # journaled and copied right after the switch. Only an unjournaled difference refuses.
    late = jobs.journaled(move.control.runtime.journal, checked.divergent)
    lost = [d for d in checked.divergent if d not in late]
    return not lost and not checked.failed, (
        f"{sum(checked.compared.values())} compared, {len(lost)} divergent, {len(late)} written since the "
        "copy (journaled: copied after the switch)" + (": " + ", ".join(f"{e} {i}" for e, i, _, _ in lost[:5])
                                                        if lost else ""))


# --- a canary's step up ----------------------------------------------------------------------

@gate("the server is in phase 3")
def in_phase_three(move: Move):
    if move.source == 3:
        return True, "both stores written, reads compared"
    return False, (f"a read canary runs in phase 3 (both stores written, DynamoDB backfilled and verified);"
                   f" the server is in phase {move.current.label}")


def _at_step(move: Move, everyone: bool = False):
    """The entity's evidence since its canary last changed (and since phase 3 began), over the
    window; with `everyone`, also every entity's over the same window."""
    since, version = move.current.step_of(move.entity)
    found = _window(move, since or now(), version)
    mine = found.get(move.entity) or EntityEvidence(move.entity)
    return (mine, found) if everyone else mine


@gate("DynamoDB served this step within limits")
def healthy_at_step(move: Move):
    """Its error rate with enough reads at this step to say, and its p99 once there are enough
    reads for one (limits.P99_MIN_READS; until then the guard watches it). An entity read too rarely
    to judge in either store (users: sign-ins and profiles) does not hold the ramp back as long
    as none of its DynamoDB reads failed and another entity's DynamoDB reads at this step were
    enough and within the limits (an idle or failing store proves nothing)."""
    if move.source != 3:
        return False, "not in phase 3"
    ev, everyone = _at_step(move, everyone=True)
    limits = Limits.of(move.control.settings)
    need, n, m = limits.min_samples, ev.reads("dynamodb"), ev.reads("mysql")
    if n < need:
        failed = n - ev.n("read.dynamodb.ok")
        if failed:
            return False, f"{move.entity}: {failed} of its {n} DynamoDB reads at this step failed"
        if m >= need:  # read often enough to judge, but DynamoDB was hardly asked
            return False, (f"{move.entity}: read {m} times at this step, {n} of them from DynamoDB, fewer than {need}:"
                           f" compare more ({_compare_all([move.entity])})")
        healthy = [e for e, other in everyone.items() if e != move.entity and other.n("read.dynamodb.ok") >= need
                   and not limits.broken(other)]
        few = f"{n + m} reads at this step ({n} from DynamoDB, none failed), too few to judge (fewer than {need})"
        if not healthy:
            return False, f"{move.entity}: {few}; no other entity's DynamoDB reads were enough and within limits meanwhile"
        return True, f"{move.entity}: {few}; {', '.join(healthy)} served within limits meanwhile"
    verdicts = limits.dynamodb(ev)  # the error rate is decided here; a p99 may need more reads (the guard keeps watching)
    return all(v.ok is not False for v in verdicts), f"{move.entity}: " + "; ".join(v.detail for v in verdicts)


@gate("no unexplained mismatch at this step")
def consistent_at_step(move: Move):
    if move.source != 3:
        return False, "not in phase 3"
    ev = _at_step(move)
    return ev.mismatches == 0, f"{move.entity}: {ev.mismatches} mismatches of {ev.compared} comparisons"


# Raising an entity's read canary (lowering it is never gated: it is what the guard does).
CANARY_UP = (in_phase_three, healthy_at_step, consistent_at_step)


# --- the table of moves -------------------------------------------------------------------

BOTH_JOURNALS_EMPTY = (nothing_waiting(TO_DYNAMODB), nothing_waiting(TO_MYSQL))

# Forward into a phase, from the one before it (docs/enable-flags.md, "Move | Gates").
INTO = {
    2: (tables_reachable,),
    3: (tables_reachable, backfilled_after_dual_writes, verified_after_backfill, *BOTH_JOURNALS_EMPTY),
    4: (tables_reachable, compared_enough, no_mismatch_in_three, dynamodb_within_limits, *BOTH_JOURNALS_EMPTY),
    5: (tables_reachable, *BOTH_JOURNALS_EMPTY, verified_in_four, counters_raised),
}
# Back out of phase 5, to any lower phase: the copy back is a step whose outcome is a gate.
OUT_OF_FIVE = (copied_back, verified_after_copy_back)
# Back out of 4, 3 or 2: none (MySQL holds every write).


def order(move: Move) -> list[Gate]:
    """The rules of the order of moves: forward one phase at a time, from a stored phase."""
    if move.source is not None and move.target > move.source + 1:
        return [Gate("one step at a time", False, f"move to {move.source + 1} first; forward phases are "
                                                  "entered one by one, each behind its own gates")]
    if move.source is None and move.target > 2:
        return [Gate("one step at a time", False, f"the server runs a custom mix ({move.current.flags}): "
                                                  "store phase 1 or 2 first, then move on step by step")]
    return []


def checks_for(move: Move) -> tuple[Check, ...]:
    """The row of the table for this move."""
    if move.forward:
        return INTO.get(move.target, ())
    return OUT_OF_FIVE if move.source == 5 else ()


def evaluate(move: Move) -> list[Gate]:
    """Every gate of the move, in the table's order (a refused order rule first)."""
    return order(move) + [check(move) for check in checks_for(move)]


def evaluate_canary(move: Move) -> list[Gate]:
    """The gates of raising `move.entity`'s read canary."""
    return [check(move) for check in CANARY_UP]
