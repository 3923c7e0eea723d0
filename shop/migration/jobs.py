"""Backfill, verify, repair and the reverse copy: one implementation behind the CLI, the
phase transitions and the tests. Backfill, verify and the reverse copy are chunked, segmented
and resumable (segments.py); repair replays the journal entry by entry. Each takes a
`progress(line)` callback (the CLI prints the lines) and returns a report; runs that gates
rely on leave a mark in the phase state (when they started and finished, what they found)."""
from __future__ import annotations

import logging
import time

from ..aspects.compare import attribute_names
from . import entities
from .catchup import copy_back
from .copies import Copier, raise_auto_increment
from .copying import COPIED, DELETED, LEFT, ABSENT, IdCollision, differences, pool_retrying
from .directions import DIRECTIONS, TO_DYNAMODB, TO_MYSQL
from .entities import order_key
from .pages import ForwardWriter, ReverseWriter, ddb_load, mysql_existing, mysql_load
from .segments import Job, Report, owns
from .state import iso

log = logging.getLogger("shop.migration")


def copier_for(state) -> Copier:
    """The stores of an application, through repositories of the Copier's own (not routed)."""
    return Copier.of(state.db, state.dynamo)


def _failed(report, entity, entity_id, exc, direction) -> None:
    report.failed.append((entity, entity_id, exc))
    if isinstance(exc, IdCollision):
        log.error("id collision: nothing overwritten", extra={"event": "repair", "action": "collision",
                                                              "entity": entity, "entity_id": str(entity_id)})
    else:
        log.error("copy failed", extra={"event": "repair", "action": "failed", "entity": entity,
                                        "entity_id": str(entity_id), "direction": direction,
                                        "error_type": type(exc).__name__})


def _copy(copier, direction, entry_or_target, report, deleted=False):
    entity, entity_id = entry_or_target
    try:
        outcome = copier.copy(direction, entity, entity_id, deleted)
    except Exception as exc:  # noqa: BLE001 - reported; the next entity is tried
        _failed(report, entity, entity_id, exc, direction)
        return None
    _count(report, entity, entity_id, outcome, direction)
    return outcome


def _count(report, entity, entity_id, outcome, direction, quiet: bool = False) -> None:
    report.done[outcome] += 1
    if outcome == LEFT:
        report.left.append((entity, entity_id, "only the target store holds it and no deletion is recorded"))
    if not quiet:  # bulk pages log once per page instead
        log.info("copied", extra={"event": "repair", "action": outcome, "entity": entity, "entity_id": str(entity_id),
                                  "direction": direction})


def _once(fn):
    """A step that is not a sweep: done in one go, then checkpointed as done."""
    def step(seg, name, cursor, part):
        fn(seg, part)
        seg.checkpoints.save(seg.run, seg.segment, name, None, True, part.found())
    return step


class Recheck:
    """A copy to DynamoDB reads MySQL, then writes: a dual write landing in between reaches
    DynamoDB before the older copy, which then overwrites it. The backfill (after each page) and
    repair (after each copy) read MySQL again and settle what moved."""

    def __init__(self, state, copier):
        self.state, self.copier = state, copier

    def settle(self, entity, source, written, part) -> list[int]:
        """MySQL read again for the rows just written: a row that changed since `source` was
        read may have had its dual write reach DynamoDB before the older copy, which then
        overwrote it. Such rows are compared again and copied where they differ, one at a time
        (each reading both stores), up to three rounds while MySQL keeps changing them. Returns
        the rows not settled: still moving, failed, or left."""
        source, again, unsettled = dict(source), set(), []
        pending = [i for i in written if i in source]
        for _ in range(3):
            after = self.snapshot(entity, pending) if pending else {}
            moved = [i for i in pending if i not in after or differences(source[i], after[i])]
            if not moved:
                break
            outcomes = pool_retrying(lambda i: self.copy_if_different(entity, i, deleted=i not in after), moved)
            pending = []
            for i, outcome in zip(moved, outcomes):
                if isinstance(outcome, Exception):
                    _failed(part, entity, i, outcome, TO_DYNAMODB)
                    unsettled.append(i)
                elif outcome == LEFT:
                    _count(part, entity, i, LEFT, TO_DYNAMODB, quiet=True)
                    unsettled.append(i)
                else:
                    if outcome in (COPIED, DELETED):
                        again.add(i)
                    if i in after:
                        source[i] = after[i]
                        pending.append(i)  # read again: it may have moved once more
        else:
            for i in pending:
                part.left.append((entity, i, "changed in MySQL throughout its copy: run the backfill or repair again"))
            unsettled += pending
        part.done["copied again"] += len(again)
        return unsettled

    def snapshot(self, entity, ids) -> dict:
        """MySQL's rows for `ids`. A cart MySQL holds no line of is an empty cart, not a missing
        one: it is what a copy writes (and a dual write may land on it)."""
        found = mysql_load(self.state.db, self.copier.mysql, entity, ids)
        none = entities.get(entity).none
        return found if none is None else {i: found.get(i, none) for i in ids}

    def copy_if_different(self, entity, entity_id, deleted) -> str:
        if not self.copier.compare(entity, entity_id):
            return "equal"  # the dual write landed after all
        return self.copier.copy(TO_DYNAMODB, entity, entity_id, deleted=deleted)


class Backfill(Job):
    """Copy every entity MySQL holds into DynamoDB where DynamoDB's copy differs, and apply
    recorded deletions. Entities only DynamoDB holds are left alone and reported; so are
    entities DynamoDB has newer writes of (pending for MySQL: run the reverse copy first)."""
    operation = "backfill"

    def prepare(self):
        self.newer = {(e.entity, int(e.entity_id)) for e in self.journal.pending(TO_MYSQL)}
        # Entries recorded before this run are settled by it: it leaves DynamoDB equal to MySQL.
        self.entries = {(e.entity, int(e.entity_id)): e for e in self.journal.pending(TO_DYNAMODB)}
        self.writer = ForwardWriter(self.copier)
        self.recheck = Recheck(self.state, self.copier)

    def plan_more(self):
        # A table empty when the run began can hold nothing only DynamoDB has while MySQL is
        # written first (every later item came with its MySQL row): its scan would re-read
        # all the run wrote, a third of a first copy's time, to find nothing.
        if not self.state.runtime.server_flags().write_mysql:
            return {"skip_scans": []}
        dynamo = self.state.dynamo
        return {"skip_scans": [t for t in entities.DYNAMODB_TABLES if not dynamo.call(
            "scan", TableName=dynamo.table(t), Limit=1, ConsistentRead=True).get("Items")]}

    def steps(self):
        mysql, ddb = self.sweeps()
        skipped = {f"ddb:{t}" for t in self.run.plan.get("skip_scans", [])}
        return [("deletions", _once(self._deletions)), *mysql, *(s for s in ddb if s[0] not in skipped)]

    def _deletions(self, seg, part):
        for (entity, entity_id), entry in sorted(self.entries.items(), key=lambda kv: order_key(kv[0])):
            if entry.deleted and owns(seg.run, seg.segment, entity, entity_id):
                if (entity, entity_id) in self.newer:
                    part.left.append((entity, entity_id, "DynamoDB has newer writes pending for MySQL:"
                                                         " run the reverse copy"))
                    continue
                outcome = _copy(self.copier, TO_DYNAMODB, (entity, entity_id), part, deleted=True)
                if outcome in (COPIED, DELETED, ABSENT):
                    self.journal.close(entry)

    def load_page(self, entity, ids):
        newer = [i for i in ids if (entity, i) in self.newer]
        ids = [i for i in ids if (entity, i) not in self.newer and not self._deleting(entity, i)]
        source = mysql_load(self.state.db, self.copier.mysql, entity, ids)
        # Into a table empty when the run began, DynamoDB can hold only what dual writes put
        # there since: the page is written without reading it first (the reads were a quarter
        # of a first copy's DynamoDB time). What a write conditions on (listing markers) still
        # fails the write if present, and the re-read after the page (apply_page) catches a
        # newer dual write.
        e = entities.get(entity)
        blind = e.blind_first_copy and e.ddb_table in self.run.plan.get("skip_scans", [])
        current = {} if blind else ddb_load(self.state.dynamo, self.copier.ddb, entity, list(source))
        # An id gone from MySQL since listed is not in `source`: its journal entry decides.
        return newer, source, self.writer.plan(entity, source, current, blind=blind)

    def apply_page(self, entity, ids, loaded, part):
        newer, source, plan = loaded
        for i in newer:
            part.left.append((entity, i, "DynamoDB has newer writes pending for MySQL: run the reverse copy"))
        unchanged = plan.unchanged
        part.done["unchanged"] += len(unchanged)
        settled = list(unchanged)
        written = []
        for i, outcome in self.writer.write(entity, plan).items():
            if isinstance(outcome, Exception):
                _failed(part, entity, i, outcome, TO_DYNAMODB)
            else:
                _count(part, entity, i, outcome, TO_DYNAMODB, quiet=True)
                if outcome != LEFT:
                    settled.append(i)
                if outcome == COPIED:
                    written.append(i)
        unsettled = set(self.recheck.settle(entity, source, written, part))
        settled = [i for i in settled if i not in unsettled]
        log.info("backfilled a page", extra={"event": "repair", "action": "page", "entity": entity,
                                             "entity_id": f"{ids[0]}..{ids[-1]}", "direction": TO_DYNAMODB,
                                             "copied": len(settled) - len(unchanged), "unchanged": len(unchanged)})
        for i in settled:
            if (entity, i) in self.entries:
                self.journal.close(self.entries[(entity, i)])

    def _deleting(self, entity, entity_id) -> bool:
        entry = self.entries.get((entity, entity_id))
        return bool(entry and entry.deleted)

    def ddb_page(self, entity, ids, part):
        for i in sorted(set(ids) - mysql_existing(self.state.db, entity, ids)):
            if not self._deleting(entity, i):
                part.left.append((entity, i, "only in DynamoDB (no recorded deletion): not touched"))

    def finish_run(self, report):
        if self.control is not None:
            self.control.mark("backfill", {"started_at": iso(report.run.started_at),
                                           "completed_at": iso(report.run.completed_at),
                                           "copied": report.done[COPIED], "unchanged": report.done["unchanged"],
                                           "failed": report.total("failed"), "left_alone": report.total("left")})


class Verify(Job):
    """Compare the stores entity by entity: every entity MySQL holds against DynamoDB's copy,
    then every entity only DynamoDB holds."""
    operation = "verify"

    def steps(self):
        mysql, ddb = self.sweeps()
        return [*mysql, *ddb]

    def _record(self, part, entity, entity_id, found) -> None:
        part.compared[entity] += 1
        if found:
            part.divergent.append((entity, entity_id, attribute_names(found), sorted({d.kind for d in found})))

    def load_page(self, entity, ids):
        source = mysql_load(self.state.db, self.copier.mysql, entity, ids)
        current = ddb_load(self.state.dynamo, self.copier.ddb, entity, list(source))
        return {i: differences(value, current.get(i)) for i, value in source.items()}

    def apply_page(self, entity, ids, loaded, part):
        for i, found in loaded.items():
            self._record(part, entity, i, found)

    def ddb_page(self, entity, ids, part):
        # What MySQL lacks, read from DynamoDB in one batch: each differs from nothing. One just
        # created in MySQL looks divergent here; finish_segment's recheck sees it equal.
        only = sorted(set(ids) - mysql_existing(self.state.db, entity, ids))
        current = ddb_load(self.state.dynamo, self.copier.ddb, entity, only)
        nothing = entities.get(entity).none  # what MySQL's repository returns for it
        for i in only:
            self._record(part, entity, i, differences(nothing, current.get(i, nothing)))

    def finish_segment(self, seg, report):
        # Under traffic a write can sit between its MySQL commit and its DynamoDB write while it is
        # compared: what agrees a moment later was in flight, not divergent (as dual reads recheck).
        for pause in (0.5, 2.0):
            if not report.divergent:
                break
            time.sleep(pause)
            still = []
            for entity, entity_id, names, kinds in report.divergent:
                found = self.copier.compare(entity, entity_id)
                if found:
                    still.append((entity, entity_id, attribute_names(found), sorted({d.kind for d in found})))
                else:
                    report.done["transient"] += 1
            report.divergent = still

    def finish_run(self, report):
        # A difference whose entity has an open journal entry was written to one store since and
        # waits for its copy (repair, the late copy back): counted apart from the unexplained ones.
        late = len(journaled(self.journal, report.divergent)) if report.divergent else 0
        report.done["written since"] = late
        if self.control is not None:
            self.control.mark("verify", {"started_at": iso(report.run.started_at),
                                         "completed_at": iso(report.run.completed_at),
                                         "compared": sum(report.compared.values()),
                                         "divergent": report.total("divergent") - late, "written_since": late,
                                         "failed": report.total("failed")})


def journaled(journal, divergent) -> list:
    """The divergent entities (entity, id, ...) with an open journal entry either way."""
    return [d for d in divergent if journal.is_pending(d[0], d[1])]


class ReverseCopy(Job):
    """DynamoDB -> MySQL, ids kept: every entry pending for MySQL, every entity only DynamoDB
    holds (`missing`: written in phase 5 by a request that died before journaling it), or with
    `everything` every entity DynamoDB holds; then MySQL's AUTO_INCREMENT raised past
    DynamoDB's counters."""
    operation = "reverse-copy"

    def __init__(self, state, everything: bool = False, missing: bool = True, raise_ids: bool = True, **kwargs):
        super().__init__(state, **kwargs)
        self.everything, self.missing, self.raise_ids = everything, missing, raise_ids

    def prepare(self):
        self.entries = {(e.entity, int(e.entity_id)): e for e in self.journal.pending(TO_MYSQL)}
        self.writer = ReverseWriter(self.copier)

    def steps(self):
        _, ddb = self.sweeps()
        return [("journal", _once(self._journal)), *(ddb if self.everything or self.missing else [])]

    def _journal(self, seg, part):
        mine = sorted((t for t in self.entries if owns(seg.run, seg.segment, *t)), key=order_key)
        self._copy_all(part, mine)

    def _copy_all(self, part, targets) -> None:
        # Under the entity's lock, reading its entry afresh: a writer copying it back meanwhile
        # (shop.migration.catchup) is never interleaved with this copy.
        for target, result in zip(targets, pool_retrying(
                lambda t: copy_back(self.copier, self.journal, *t), targets)):
            if isinstance(result, Exception):
                _failed(part, *target, result, TO_MYSQL)
                continue
            outcome, closed = result
            if outcome is None:  # copied and closed by a writer since the journal was read
                continue
            _count(part, *target, outcome, TO_MYSQL)
            if outcome != LEFT and not closed:
                part.left.append((*target, "written again meanwhile: still pending"))

    def _settle(self, part, target, outcome) -> None:
        if isinstance(outcome, Exception):
            _failed(part, *target, outcome, TO_MYSQL)
            return
        _count(part, *target, outcome, TO_MYSQL)
        entry = self.entries.get(target)
        if entry is not None and outcome != LEFT and not self.journal.close(entry):
            part.left.append((*target, "written again meanwhile: still pending"))

    def ddb_page(self, entity, ids, part):
        targets = ids if self.everything else sorted(set(ids) - mysql_existing(self.state.db, entity, ids))
        targets = [i for i in targets if (entity, i) not in self.entries]  # the journal step copied those
        # Journaled since the run began (a write sent to DynamoDB first while MySQL catches up):
        # its writer copies it under its lock; this unlocked batch could land an older read after.
        journaled = self.journal.open_among(entity, targets)
        targets = [i for i in targets if str(i) not in journaled]
        for i, outcome in self.writer.copy(entity, targets).items():
            self._settle(part, (entity, i), outcome)

    def finish_run(self, report):
        if self.raise_ids:
            raise_auto_increment(self.state.db, self.state.dynamo, self.state.settings.id_gap)


def backfill(state, control=None, progress=None, **run) -> Report:
    return Backfill(state, control=control, progress=progress, **run).execute()


def verify(state, control=None, progress=None, **run) -> Report:
    return Verify(state, control=control, progress=progress, **run).execute()


def reverse_copy(state, progress=None, everything: bool = False, missing: bool = True, raise_ids: bool = True,
                 **run) -> Report:
    return ReverseCopy(state, everything=everything, missing=missing, raise_ids=raise_ids, progress=progress,
                       **run).execute()


def repair(state, divergent: bool = False, progress=None, authority: str | None = None) -> Report:
    """Replay every pending journal entry in its direction; with `divergent`, also copy every
    entity verify finds different, from the store that holds the truth: MySQL while it is
    written, DynamoDB in phase 5."""
    copier, journal, report = copier_for(state), state.runtime.journal, Report()
    recheck = Recheck(state, copier)
    # The source of truth for data is MySQL while MySQL is written (phases 1-4: it is written
    # first), DynamoDB only when it alone is written; not the store reads come from (phase 4).
    if authority is None:
        authority = "mysql" if state.runtime.server_flags().write_mysql else "dynamodb"
    ddb_authority = authority == "dynamodb"
    pending = {direction: journal.pending(direction) for direction in DIRECTIONS}
    newer = {(e.entity, str(e.entity_id)) for e in pending[TO_MYSQL]}
    for direction in DIRECTIONS:
        entries = sorted(pending[direction], key=lambda e: order_key((e.entity, e.entity_id)))
        if direction == TO_DYNAMODB:
            # MySQL's copy is older than DynamoDB's where DynamoDB took writes MySQL has not:
            # replaying it would undo them. Left, and said so.
            stale = [e for e in entries if ddb_authority or (e.entity, str(e.entity_id)) in newer]
            report.left += [(e.entity, e.entity_id, "DynamoDB holds newer writes: not copied from MySQL")
                            for e in stale]
            entries = [e for e in entries if e not in stale]
        if entries and progress:
            progress(f"repair: replaying {len(entries)} entries {direction.words}")
        for entry in entries:
            if direction == TO_MYSQL:
                _replay_to_mysql(copier, journal, entry, report)
            else:
                _replay_to_dynamodb(recheck, journal, entry, report)
    if divergent:
        _copy_divergent(state, recheck, TO_MYSQL if ddb_authority else TO_DYNAMODB, report, progress)
    return report


def _copy_divergent(state, recheck, direction, report, progress) -> None:
    """Copy every entity verify finds different, from the store that holds the truth."""
    for entity, entity_id, _, _ in verify(state, progress=progress).divergent:
        if direction == TO_DYNAMODB:
            _copy_rechecked(recheck, (entity, entity_id), report)
        else:
            _copy(recheck.copier, direction, (entity, entity_id), report)


def _replay_to_mysql(copier, journal, entry, report) -> None:
    """Under the entity's lock, as writers copy back (catchup); the entry is closed there."""
    try:
        outcome, closed = copy_back(copier, journal, entry.entity, int(entry.entity_id))
    except Exception as exc:  # noqa: BLE001 - reported; the next entity is tried
        _failed(report, entry.entity, entry.entity_id, exc, TO_MYSQL)
        return
    if outcome is not None:
        _count(report, entry.entity, entry.entity_id, outcome, TO_MYSQL)
    if outcome not in (None, LEFT) and not closed:
        report.left.append((entry.entity, entry.entity_id, "written again meanwhile: still pending"))


def _replay_to_dynamodb(recheck, journal, entry, report) -> None:
    outcome = _copy_rechecked(recheck, (entry.entity, int(entry.entity_id)), report, entry.deleted)
    if outcome is not None and outcome != LEFT and not journal.close(entry):
        report.left.append((entry.entity, entry.entity_id, "written again meanwhile: still pending"))


def _copy_rechecked(recheck, target, report, deleted=False):
    """One copy to DynamoDB, then the backfill's re-check: MySQL is read before the copy and
    again after it, and a row that moved meanwhile is settled. None when it did not settle (the
    reason is in the report), so its journal entry stays."""
    entity, entity_id = target
    try:
        source = recheck.snapshot(entity, [entity_id])
    except Exception as exc:  # noqa: BLE001 - reported; the next entity is tried
        _failed(report, entity, entity_id, exc, TO_DYNAMODB)
        return None
    outcome = _copy(recheck.copier, TO_DYNAMODB, target, report, deleted)
    if outcome != COPIED:
        return outcome
    try:
        unsettled = recheck.settle(entity, source, [entity_id], report)
    except Exception as exc:  # noqa: BLE001 - copied, but not known to be settled: the entry stays
        _failed(report, entity, entity_id, exc, TO_DYNAMODB)
        return None
    return None if unsettled else outcome


