"""Backfill, verify, repair and the reverse copy: one implementation behind the CLI, the
phase transitions and the tests. Each takes a `progress(iterable, label)` wrapper (the CLI
passes a progress bar) and returns a report; runs that gates rely on leave a mark in the
phase state (when they started and finished, and what they found)."""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from ..aspects.compare import attribute_names
from .entities import NAMES, order_key
from .journal import TO_DYNAMODB, TO_MYSQL
from .state import iso, now
from .sync import ABSENT, COPIED, DELETED, LEFT, IdCollision, Sync

log = logging.getLogger("shop.migration")


def _plain(items, label):
    return items


@dataclass
class Report:
    done: Counter = field(default_factory=Counter)            # outcome -> count
    left: list = field(default_factory=list)                  # (entity, id, why) not touched
    failed: list = field(default_factory=list)                # (entity, id, error)
    divergent: list = field(default_factory=list)             # (entity, id, attribute names, kinds)
    compared: Counter = field(default_factory=Counter)        # entity -> count

    @property
    def ok(self) -> bool:
        return not self.failed and not self.divergent


def make_sync(state) -> Sync:
    from .. import Repositories
    return Sync(state.db, Repositories.mysql(state.db), Repositories.dynamodb(state.dynamo), state.dynamo)


def _copy(sync, journal, direction, entry_or_target, report, deleted=False):
    entity, entity_id = entry_or_target
    try:
        outcome = sync.copy(direction, entity, entity_id, deleted)
    except IdCollision as exc:
        report.failed.append((entity, entity_id, exc))
        log.error("id collision: nothing overwritten", extra={"event": "repair", "action": "collision",
                                                              "entity": entity, "entity_id": str(entity_id)})
        return None
    except Exception as exc:  # noqa: BLE001 - reported; the next entity is tried
        report.failed.append((entity, entity_id, exc))
        log.error("copy failed", extra={"event": "repair", "action": "failed", "entity": entity,
                                        "entity_id": str(entity_id), "direction": direction,
                                        "error_type": type(exc).__name__})
        return None
    report.done[outcome] += 1
    if outcome == LEFT:
        report.left.append((entity, entity_id, "only the target store holds it and no deletion is recorded"))
    log.info("copied", extra={"event": "repair", "action": outcome, "entity": entity, "entity_id": str(entity_id),
                              "direction": direction})
    return outcome


def backfill(state, control=None, progress=_plain) -> Report:
    """Copy every entity MySQL holds into DynamoDB, and apply recorded deletions. Entities only
    DynamoDB holds are left alone and reported; so are entities DynamoDB has newer writes of
    (pending for MySQL: run the reverse copy first)."""
    started = now()
    sync, journal, report = make_sync(state), state.runtime.journal, Report()
    newer = {(e.entity, int(e.entity_id)) for e in journal.pending(TO_MYSQL)}
    # Entries recorded before this run are settled by it: the copy writes MySQL's current state.
    entries = {(e.entity, int(e.entity_id)): e for e in journal.pending(TO_DYNAMODB)}
    deletions = {k: e for k, e in entries.items() if e.deleted}
    found = sync.ids_by_store()
    targets = sorted({(e, i) for e in NAMES for i in found["mysql"][e]} | set(deletions), key=order_key)
    for e in NAMES:
        for i in sorted(found["dynamodb"][e] - found["mysql"][e]):
            if (e, i) not in deletions:
                report.left.append((e, i, "only in DynamoDB (no recorded deletion): not touched"))
    for target in progress(targets, f"backfilling {len(targets)} entities"):
        if target in newer:
            report.left.append((*target, "DynamoDB has newer writes pending for MySQL: run the reverse copy"))
            continue
        outcome = _copy(sync, journal, TO_DYNAMODB, target, report, deleted=target in deletions)
        if target in entries and outcome in (COPIED, DELETED, ABSENT):
            journal.close(entries[target])
    if control is not None:
        control.mark("backfill", {"started_at": iso(started), "completed_at": iso(now()),
                                  "copied": report.done[COPIED], "failed": len(report.failed),
                                  "left_alone": len(report.left)})
    return report


def verify(state, control=None, progress=_plain) -> Report:
    """Compare the stores entity by entity (every entity either holds)."""
    started = now()
    sync, report = make_sync(state), Report()
    targets = sync.targets()
    for entity, entity_id in progress(targets, f"verifying {len(targets)} entities"):
        report.compared[entity] += 1
        try:
            differences = sync.compare(entity, entity_id)
        except Exception as exc:  # noqa: BLE001
            report.failed.append((entity, entity_id, exc))
            continue
        if differences:
            report.divergent.append((entity, entity_id, attribute_names(differences),
                                     sorted({d.kind for d in differences})))
    # Under traffic a write can sit between its MySQL commit and its DynamoDB write while it is
    # compared: what agrees a moment later was in flight, not divergent (as dual reads recheck).
    for pause in (0.5, 2.0):
        if not report.divergent:
            break
        time.sleep(pause)
        still = []
        for entity, entity_id, names, kinds in report.divergent:
            differences = sync.compare(entity, entity_id)
            if differences:
                still.append((entity, entity_id, attribute_names(differences), sorted({d.kind for d in differences})))
            else:
                report.done["transient"] += 1
        report.divergent = still
    if control is not None:
        control.mark("verify", {"started_at": iso(started), "completed_at": iso(now()),
                                "compared": sum(report.compared.values()), "divergent": len(report.divergent),
                                "failed": len(report.failed)})
    return report


def repair(state, divergent: bool = False, progress=_plain, authority: str | None = None) -> Report:
    """Replay every pending journal entry in its direction; with `divergent`, also copy every
    entity verify finds different, from the store that holds the truth: MySQL while it is
    written, DynamoDB in phase 5."""
    sync, journal, report = make_sync(state), state.runtime.journal, Report()
    # The source of truth for data is MySQL while MySQL is written (phases 1-4: it is written
    # first), DynamoDB only when it alone is written; not the store reads come from (phase 4).
    if authority is None:
        authority = "mysql" if state.runtime.server_flags().write_mysql else "dynamodb"
    ddb_authority = authority == "dynamodb"
    newer = {(e.entity, str(e.entity_id)) for e in journal.pending(TO_MYSQL)}
    for direction in (TO_DYNAMODB, TO_MYSQL):
        entries = sorted(journal.pending(direction), key=lambda e: order_key((e.entity, e.entity_id)))
        if direction == TO_DYNAMODB:
            # MySQL's copy is older than DynamoDB's where DynamoDB took writes MySQL has not:
            # replaying it would undo them. Left, and said so.
            stale = [e for e in entries if ddb_authority or (e.entity, str(e.entity_id)) in newer]
            for e in stale:
                report.left.append((e.entity, e.entity_id, "DynamoDB holds newer writes: not copied from MySQL"))
            entries = [e for e in entries if e not in stale]
        for entry in progress(entries, f"replaying {len(entries)} entries {direction.replace('_', ' ')}"):
            outcome = _copy(sync, journal, direction, (entry.entity, int(entry.entity_id)), report, entry.deleted)
            if outcome is not None and outcome != LEFT and not journal.close(entry):
                report.left.append((entry.entity, entry.entity_id, "written again meanwhile: still pending"))
    if divergent:
        direction = TO_MYSQL if ddb_authority else TO_DYNAMODB
        found = verify(state, progress=progress)
        for entity, entity_id, _, _ in found.divergent:
            _copy(sync, journal, direction, (entity, entity_id), report)
    return report


def reverse_copy(state, progress=_plain, everything: bool = False, missing: bool = True) -> Report:
    """DynamoDB -> MySQL, ids kept: every entry pending for MySQL, every entity only DynamoDB
    holds (`missing`: written in phase 5 by a request that died before journaling it), or with
    `everything` every entity DynamoDB holds; then MySQL's AUTO_INCREMENT raised past
    DynamoDB's counters."""
    from .sync import raise_auto_increment

    sync, journal, report = make_sync(state), state.runtime.journal, Report()
    entries = {(e.entity, int(e.entity_id)): e for e in journal.pending(TO_MYSQL)}
    targets = set(entries)
    if everything or missing:
        found = sync.ids_by_store()
        targets |= {(e, i) for e in NAMES for i in found["dynamodb"][e]
                    if everything or i not in found["mysql"][e]}
    for target in progress(sorted(targets, key=order_key), f"copying {len(targets)} entities to MySQL"):
        entry = entries.get(target)
        outcome = _copy(sync, journal, TO_MYSQL, target, report, deleted=bool(entry and entry.deleted))
        if entry is not None and outcome is not None and outcome != LEFT and not journal.close(entry):
            report.left.append((*target, "written again meanwhile: still pending"))
    raise_auto_increment(state.db, state.dynamo, state.settings.id_gap)
    return report
