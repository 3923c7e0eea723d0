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
from contextlib import contextmanager

import pymysql

from observability.events import emit

from .entities import order_key
from .journal import TO_MYSQL
from .sync import LEFT, Sync

log = logging.getLogger("shop.migration")
LOCK_WAIT_S = 10


class LockTimeout(TimeoutError):
    pass


@contextmanager
def entity_lock(db, entity: str, entity_id):
    """MySQL's named lock for one entity, on a connection of its own (closing it releases the
    lock, whatever happened in between)."""
    conn = pymysql.connect(**{**db.connect_kwargs(), "autocommit": True})
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (f"shop.copy.{entity}.{entity_id}", LOCK_WAIT_S))
            if cur.fetchone()[0] != 1:
                raise LockTimeout(f"{entity} {entity_id} is being copied by another process: waited {LOCK_WAIT_S} s")
        yield
    finally:
        conn.close()


def copy_back(sync, journal, entity: str, entity_id):
    """Copy one journaled entity DynamoDB -> MySQL under its lock; close its entry unless a
    write re-opened it meanwhile. Returns (outcome, closed); (None, True) when no entry was open
    (another copy did it)."""
    with entity_lock(sync.db, entity, entity_id):
        entry = journal.entry(entity, entity_id)
        if entry is None:
            return None, True
        outcome = sync.copy(TO_MYSQL, entity, entity_id, entry.deleted)
        return outcome, outcome != LEFT and journal.close(entry)


class CatchUp:
    """The router's hook: copy back, at once, what a write sent to DynamoDB first touched."""

    def __init__(self, db, dynamo, journal):
        self.db, self.dynamo, self.journal = db, dynamo, journal
        self._sync = None

    @property
    def sync(self) -> Sync:
        if self._sync is None:
            from .. import Repositories  # unbound instances: plain MySQL and DynamoDB calls
            self._sync = Sync(self.db, Repositories.mysql(self.db), Repositories.dynamodb(self.dynamo), self.dynamo)
        return self._sync

    def __call__(self, targets) -> None:
        for entity, entity_id in sorted(dict.fromkeys(targets), key=order_key):
            try:
                copy_back(self.sync, self.journal, entity, entity_id)
            except Exception as exc:  # noqa: BLE001 - still journaled: the late copy or `flask repair` does it
                emit(log, logging.WARNING, "copy back deferred", {
                    "event": "repair", "entity": entity, "entity_id": str(entity_id),
                    "direction": TO_MYSQL, "error_type": type(exc).__name__})
