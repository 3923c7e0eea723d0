"""MySQL catching up after phase 5: each entity DynamoDB wrote alone is copied back under a lock.

Leaving phase 5, MySQL lacks what DynamoDB took alone (journaled towards MySQL). Until the late
copy has brought it over, a write that went to MySQL first would change a stale row, and its
mirror would carry that stale row into DynamoDB; a copy back that read DynamoDB just before such
a write lands would put the older state into MySQL. So, while the phase state says MySQL is
behind, the router sends a write that touches a journaled entity to DynamoDB first and copies
what it touched back at once (`CatchUp.__call__`), and every copy back of a journaled entity,
the late copy's and the writers', holds a per-entity MySQL lock from reading the journal entry
to closing it: two copies of one entity never interleave, and the later one reads DynamoDB later.
"""
from __future__ import annotations

import logging

from observability.events import emit

from .copies import Copier, entity_lock
from .copying import LEFT
from .directions import TO_MYSQL
from .entities import order_key

log = logging.getLogger("shop.migration")


def copy_back(copier, journal, entity: str, entity_id, always: bool = False):
    """Copy one journaled entity DynamoDB -> MySQL under its lock; close its entry unless a
    write re-opened it meanwhile. Returns (outcome, closed); (None, True) when no entry was open
    (another copy did it), unless `always`: a writer copies what it wrote even if its journal
    record was lost."""
    with entity_lock(copier.db, entity, entity_id):
        entry = journal.entry(entity, entity_id)
        if entry is None and not always:
            return None, True
        outcome = copier.copy(TO_MYSQL, entity, entity_id, bool(entry and entry.deleted))
        return outcome, entry is None or (outcome != LEFT and journal.close(entry))


class CatchUp:
    """The router's hook: copy back, at once, what a write sent to DynamoDB first touched."""

    def __init__(self, db, dynamo, journal, still_behind=None):
        self.db, self.dynamo, self.journal = db, dynamo, journal
        self.still_behind = still_behind  # () -> None: keep the phase state's mark (a copy was deferred)
        self._copier = None

    @property
    def copier(self) -> Copier:
        if self._copier is None:
            self._copier = Copier.of(self.db, self.dynamo)
        return self._copier

    def __call__(self, targets) -> None:
        deferred = False
        for entity, entity_id in sorted(dict.fromkeys(targets), key=order_key):
            try:
                copy_back(self.copier, self.journal, entity, entity_id, always=True)
            except Exception as exc:  # noqa: BLE001 - still journaled: the late copy or `flask repair` does it
                deferred = True
                emit(log, logging.WARNING, "copy back deferred", {
                    "event": "repair", "entity": entity, "entity_id": str(entity_id),
                    "direction": TO_MYSQL, "error_type": type(exc).__name__})
        if deferred and self.still_behind is not None:
            # The late copy may have cleared the mark meanwhile: MySQL lacks this write until a
            # copy succeeds, so writes touching it must keep going to DynamoDB first.
            try:
                self.still_behind()
            except Exception as exc:  # noqa: BLE001 - the entry stays open; the 4 -> 3 gate waits for it
                emit(log, logging.ERROR, "MySQL behind, not marked", {
                    "event": "phase", "error_type": type(exc).__name__})
