"""The durable record of writes that did not reach DynamoDB, kept in MySQL: secondary writes
that failed, and deletions made while DynamoDB was not written (only a recorded deletion may
delete from the other store)."""
from __future__ import annotations

import logging
from datetime import datetime

from observability.events import emit

from ..db import retry_deadlocks

log = logging.getLogger("shop.aspects")



class RepairLog:
    def __init__(self, db):
        self.db = db

    def record(self, targets, operation: str, error: BaseException | str, deleted: bool = False,
               level: int = logging.WARNING) -> int:
        """One row per (entity, id). Returns how many were written. `level`: INFO for what is
        expected (a dual write of a row the backfill has not copied yet)."""
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        rows = [(entity, str(entity_id), operation, reason[:1000], bool(deleted))
                for entity, entity_id in dict.fromkeys(targets)]
        if not rows:
            return 0
        try:
            self._insert(rows)
        except Exception:
            # The entities stay findable by `verify`; the log line names them for an operator.
            emit(log, logging.ERROR, "repair entry could not be recorded",
                 {"event": "repair", "action": "unrecorded", "targets": [f"{e}:{i}" for e, i, *_ in rows],
                  "operation": operation}, exc_info=True)
            raise
        for entity, entity_id, *_ in rows:
            emit(log, level, "secondary write recorded for repair",
                 {"event": "repair", "action": "recorded", "entity": entity, "entity_id": entity_id,
                  "operation": operation, "error_type": reason.split(":")[0]})
        return len(rows)

    @retry_deadlocks  # the entity's write is already saved: a deadlock here must not fail it
    def _insert(self, rows) -> None:
        with self.db.cursor(write=True) as cur:
            cur.executemany("INSERT INTO migration_repairs (entity, entity_id, operation, error, deleted)"
                            " VALUES (%s, %s, %s, %s, %s)", rows)

    def pending(self) -> list[dict]:
        with self.db.cursor() as cur:
            cur.execute("SELECT id, entity, entity_id, operation, error, deleted, created_at FROM migration_repairs"
                        " WHERE repaired_at IS NULL ORDER BY id")
            return list(cur.fetchall())

    def pending_count(self) -> int:
        with self.db.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM migration_repairs WHERE repaired_at IS NULL")
            return cur.fetchone()["n"]

    def is_pending(self, entity: str, entity_id: str | None = None, ids: list[str] = ()) -> bool:
        """An open entry for the entity, for one of `ids`, or (neither given) for any of its kind."""
        with self.db.cursor() as cur:
            if ids:
                cur.execute("SELECT 1 FROM migration_repairs WHERE repaired_at IS NULL AND entity = %s AND entity_id IN"
                            f" ({', '.join(['%s'] * len(ids))}) LIMIT 1", (entity, *ids))
            elif entity_id is None:
                cur.execute("SELECT 1 FROM migration_repairs WHERE repaired_at IS NULL AND entity = %s LIMIT 1",
                            (entity,))
            else:
                cur.execute("SELECT 1 FROM migration_repairs WHERE repaired_at IS NULL AND entity = %s"
                            " AND entity_id = %s LIMIT 1", (entity, entity_id))
            return cur.fetchone() is not None

    @retry_deadlocks
    def mark_repaired(self, entity: str, entity_id: str, up_to_id: int) -> None:
        """Close the entries for one target recorded up to `up_to_id` (newer ones stay open)."""
        with self.db.cursor(write=True) as cur:
            cur.execute("UPDATE migration_repairs SET repaired_at = %s WHERE entity = %s AND entity_id = %s"
                        " AND id <= %s AND repaired_at IS NULL",
                        (datetime.utcnow(), entity, entity_id, up_to_id))
