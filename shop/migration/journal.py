"""Writes that reached one store while the other is expected to catch up, kept in the store
that holds them: towards DynamoDB in MySQL (`migration_repairs`), towards MySQL in DynamoDB
(items of the counters table), so each record survives the other store being down or retired.

An entry names an entity, not an operation: replaying copies the entity's current state from
the store that has it. `deleted` marks a recorded deletion, the only thing that lets a replay
delete a record from the other store.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from botocore.exceptions import ClientError

from ..repositories.dynamodb.client import condition_failed, encode

log = logging.getLogger("shop.migration")
TO_DYNAMODB, TO_MYSQL = "to_dynamodb", "to_mysql"
DIRECTIONS = (TO_DYNAMODB, TO_MYSQL)
_PREFIX = "PENDING#"


@dataclass(frozen=True)
class Entry:
    direction: str
    entity: str
    entity_id: str
    deleted: bool
    mark: int          # MySQL: the newest entry id; DynamoDB: the item's sequence number
    operation: str = ""


class Journal:
    def __init__(self, repair_log, dynamo):
        self.repair_log, self.dynamo = repair_log, dynamo

    @property
    def _table(self) -> str:
        return self.dynamo.table("counters")

    def record(self, direction: str, targets, operation: str, error, deleted: bool = False) -> int:
        if direction == TO_DYNAMODB:
            return self.repair_log.record(targets, operation, error, deleted=deleted)
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        count = 0
        for entity, entity_id in dict.fromkeys(targets):
            self.dynamo.call(
                "update_item", TableName=self._table, Key=encode({"PK": f"{_PREFIX}{entity}#{entity_id}"}),
                UpdateExpression="SET entity = :e, entity_id = :i, operation = :o, deleted = :d, reason = :r, "
                                 "recorded_at = :t ADD seq :one",
                ExpressionAttributeValues=encode({":e": entity, ":i": str(entity_id), ":o": operation,
                                                  ":d": bool(deleted), ":r": reason[:500], ":one": 1,
                                                  ":t": datetime.now(timezone.utc).isoformat()}))
            count += 1
        return count

    def pending(self, direction: str) -> list[Entry]:
        if direction == TO_DYNAMODB:
            merged: dict[tuple[str, str], Entry] = {}
            for row in self.repair_log.pending():
                key = (row["entity"], row["entity_id"])
                old = merged.get(key)
                merged[key] = Entry(TO_DYNAMODB, row["entity"], row["entity_id"],
                                    bool(row.get("deleted")) or bool(old and old.deleted),
                                    max(row["id"], old.mark if old else 0), row["operation"])
            return list(merged.values())
        items = self.dynamo.scan_all(TableName=self._table, ConsistentRead=True,
                                     FilterExpression="begins_with(PK, :p)",
                                     ExpressionAttributeValues=encode({":p": _PREFIX}))
        return [Entry(TO_MYSQL, i["entity"], i["entity_id"], bool(i.get("deleted")), int(i["seq"]),
                      i.get("operation", "")) for i in items]

    def entry(self, entity: str, entity_id) -> Entry | None:
        """The open entry towards MySQL for one entity, read consistently (None: none open)."""
        item = self.dynamo.get(self._table, {"PK": f"{_PREFIX}{entity}#{entity_id}"})
        if item is None:
            return None
        return Entry(TO_MYSQL, item["entity"], item["entity_id"], bool(item.get("deleted")), int(item["seq"]),
                     item.get("operation", ""))

    def open_among(self, entity: str, ids) -> set[int]:
        """Ids (as text) among these with an open entry towards MySQL: one BatchGetItem."""
        if not ids:
            return set()
        found = self.dynamo.batch_get(self._table, [{"PK": f"{_PREFIX}{entity}#{i}"} for i in ids])
        return {str(item["entity_id"]) for item in found}

    def behind(self) -> set[tuple[str, str]]:
        """(entity, id) of every entity with a write MySQL lacks: one read of the journal."""
        return {(e.entity, str(e.entity_id)) for e in self.pending(TO_MYSQL)}

    def count(self, direction: str):
        """Pending entries one way; a store that cannot be read says why instead."""
        try:
            return self.repair_log.pending_count() if direction == TO_DYNAMODB else len(self.pending(TO_MYSQL))
        except Exception as exc:  # noqa: BLE001 - shown to the operator, not raised
            return f"unknown ({type(exc).__name__})"

    def counts(self) -> dict[str, object]:
        return {direction: self.count(direction) for direction in DIRECTIONS}

    def is_pending(self, entity: str, entity_id=None, among=()) -> bool:
        """Whether an entry (either direction) is open for this entity, for one of `among`, or
        (neither given) for any of its kind."""
        try:
            if among:
                ids = sorted({str(i) for i in among})
                return self.repair_log.is_pending(entity, ids=ids) or bool(self.open_among(entity, ids))
            if self.repair_log.is_pending(entity, None if entity_id is None else str(entity_id)):
                return True
            if entity_id is not None:
                item = self.dynamo.get(self._table, {"PK": f"{_PREFIX}{entity}#{entity_id}"})
                return item is not None
            return any(e.entity == entity for e in self.pending(TO_MYSQL))
        except Exception:  # noqa: BLE001 - unknown counts as not pending: the mismatch stands
            return False

    def close(self, entry: Entry) -> bool:
        """Close an entry unless a newer write re-opened it since it was read."""
        if entry.direction == TO_DYNAMODB:
            self.repair_log.mark_repaired(entry.entity, entry.entity_id, entry.mark)
            return True
        try:
            self.dynamo.call("delete_item", TableName=self._table,
                             Key=encode({"PK": f"{_PREFIX}{entry.entity}#{entry.entity_id}"}),
                             ConditionExpression="seq = :s", ExpressionAttributeValues=encode({":s": entry.mark}))
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True
