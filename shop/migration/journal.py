"""Writes that reached one store while the other is expected to catch up, kept in the store
that holds them: towards DynamoDB in MySQL (`migration_repairs`), towards MySQL in DynamoDB
(items of the counters table), so each record survives the other store being down or retired.
Each direction has its store of entries; the Journal speaks for both.

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
from .directions import DIRECTIONS, TO_DYNAMODB, TO_MYSQL, Direction

log = logging.getLogger("shop.migration")
_PREFIX = "PENDING#"


@dataclass(frozen=True)
class Entry:
    direction: Direction
    entity: str
    entity_id: str
    deleted: bool
    mark: int          # MySQL: the newest entry id; DynamoDB: the item's sequence number
    operation: str = ""


def _reason(error) -> str:
    return error if isinstance(error, str) else f"{type(error).__name__}: {error}"


class MySQLEntries:
    """Entries towards DynamoDB: rows of MySQL's migration_repairs (shop.aspects.repair_log),
    one per recorded write, several for one entity closed together."""

    direction = TO_DYNAMODB

    def __init__(self, repair_log):
        self.log = repair_log

    def record(self, targets, operation: str, error, deleted: bool = False, level: int = logging.WARNING) -> int:
        return self.log.record(targets, operation, error, deleted=deleted, level=level)

    def pending(self) -> list[Entry]:
        merged: dict[tuple[str, str], Entry] = {}
        for row in self.log.pending():
            key = (row["entity"], row["entity_id"])
            old = merged.get(key)
            merged[key] = Entry(self.direction, row["entity"], row["entity_id"],
                                bool(row.get("deleted")) or bool(old and old.deleted),
                                max(row["id"], old.mark if old else 0), row["operation"])
        return list(merged.values())

    def count(self) -> int:
        return self.log.pending_count()

    def is_pending(self, entity: str, entity_id=None, among=()) -> bool:
        if among:
            return self.log.is_pending(entity, ids=sorted({str(i) for i in among}))
        return self.log.is_pending(entity, None if entity_id is None else str(entity_id))

    def close(self, entry: Entry) -> bool:
        self.log.mark_repaired(entry.entity, entry.entity_id, entry.mark)
        return True


class DynamoDBEntries:
    """Entries towards MySQL: one item per entity in DynamoDB's counters table, its sequence
    number moved on by every write recorded, so a close never drops a newer one."""

    direction = TO_MYSQL

    def __init__(self, dynamo):
        self.dynamo = dynamo

    @property
    def _table(self) -> str:
        return self.dynamo.table("counters")

    def record(self, targets, operation: str, error, deleted: bool = False, level: int = logging.WARNING) -> int:
        count = 0
        for entity, entity_id in dict.fromkeys(targets):
            self.dynamo.call(
                "update_item", TableName=self._table, Key=encode({"PK": f"{_PREFIX}{entity}#{entity_id}"}),
                UpdateExpression="SET entity = :e, entity_id = :i, operation = :o, deleted = :d, reason = :r, "
                                 "recorded_at = :t ADD seq :one",
                ExpressionAttributeValues=encode({":e": entity, ":i": str(entity_id), ":o": operation,
                                                  ":d": bool(deleted), ":r": _reason(error)[:500], ":one": 1,
                                                  ":t": datetime.now(timezone.utc).isoformat()}))
            count += 1
        return count

    def _entry(self, item) -> Entry:
        return Entry(self.direction, item["entity"], item["entity_id"], bool(item.get("deleted")), int(item["seq"]),
                     item.get("operation", ""))

    def pending(self) -> list[Entry]:
        items = self.dynamo.scan_all(TableName=self._table, ConsistentRead=True, FilterExpression="begins_with(PK, :p)",
                                     ExpressionAttributeValues=encode({":p": _PREFIX}))
        return [self._entry(i) for i in items]

    def entry(self, entity: str, entity_id) -> Entry | None:
        """The open entry for one entity, read consistently (None: none open)."""
        item = self.dynamo.get(self._table, {"PK": f"{_PREFIX}{entity}#{entity_id}"})
        return None if item is None else self._entry(item)

    def open_among(self, entity: str, ids) -> set[str]:
        """Ids (as text) among these with an open entry: one BatchGetItem."""
        if not ids:
            return set()
        found = self.dynamo.batch_get(self._table, [{"PK": f"{_PREFIX}{entity}#{i}"} for i in ids])
        return {str(item["entity_id"]) for item in found}

    def count(self) -> int:
        return len(self.pending())

    def is_pending(self, entity: str, entity_id=None, among=()) -> bool:
        if among:
            return bool(self.open_among(entity, sorted({str(i) for i in among})))
        if entity_id is not None:
            return self.entry(entity, entity_id) is not None
        return any(e.entity == entity for e in self.pending())

    def close(self, entry: Entry) -> bool:
        """Close an entry unless a newer write re-opened it since it was read."""
        try:
            self.dynamo.call("delete_item", TableName=self._table,
                             Key=encode({"PK": f"{_PREFIX}{entry.entity}#{entry.entity_id}"}),
                             ConditionExpression="seq = :s", ExpressionAttributeValues=encode({":s": entry.mark}))
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True


class Journal:
    to_dynamodb, to_mysql = TO_DYNAMODB, TO_MYSQL  # for callers that import nothing of this package

    def __init__(self, repair_log, dynamo):
        self.repair_log, self.dynamo = repair_log, dynamo
        self.stores = {TO_DYNAMODB: MySQLEntries(repair_log), TO_MYSQL: DynamoDBEntries(dynamo)}

    def record(self, direction, targets, operation: str, error, deleted: bool = False,
               level: int = logging.WARNING) -> int:
        return self.stores[direction].record(targets, operation, error, deleted, level)

    def pending(self, direction) -> list[Entry]:
        return self.stores[direction].pending()

    def entry(self, entity: str, entity_id) -> Entry | None:
        """The open entry towards MySQL for one entity (what a copy back closes)."""
        return self.stores[TO_MYSQL].entry(entity, entity_id)

    def open_among(self, entity: str, ids) -> set[str]:
        return self.stores[TO_MYSQL].open_among(entity, ids)

    def behind(self) -> set[tuple[str, str]]:
        """(entity, id) of every entity with a write MySQL lacks: one read of the journal."""
        return {(e.entity, str(e.entity_id)) for e in self.pending(TO_MYSQL)}

    def count(self, direction):
        """Pending entries one way; a store that cannot be read says why instead."""
        try:
            return self.stores[direction].count()
        except Exception as exc:  # noqa: BLE001 - shown to the operator, not raised
            return f"unknown ({type(exc).__name__})"

    def counts(self) -> dict[str, object]:
        return {direction: self.count(direction) for direction in DIRECTIONS}

    def is_pending(self, entity: str, entity_id=None, among=()) -> bool:
        """Whether an entry (either direction) is open for this entity, for one of `among`, or
        (neither given) for any of its kind."""
        try:
            return any(store.is_pending(entity, entity_id, among) for store in self.stores.values())
        except Exception:  # noqa: BLE001 - unknown counts as not pending: the mismatch stands
            return False

    def close(self, entry: Entry) -> bool:
        return self.stores[entry.direction].close(entry)
