"""Atomic ID counters for writes made without MySQL (DynamoDB-only phase).

The move into phase 5 raises them above MySQL's largest ids. Should a counter still lag
(ids mirrored after it was raised), a create whose new id is taken fails its
attribute_not_exists condition and takes the next id: ids never cross.
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from .client import condition_failed, encode, value

ID_ATTEMPTS = 20  # a lagging counter skips at most this many taken ids per create


class IdTaken(Exception):
    """A freshly allocated id already belongs to an item: allocate another."""


def create_with_free_id(create, what: str, mirror_of, duplicate):
    """Run `create()` until it finds a free id. A mirrored id that is taken is the caller's
    problem (`duplicate(message)` is raised); a new one is replaced by the next, never shown."""
    from ...errors import ConflictError
    for _ in range(ID_ATTEMPTS):
        try:
            return create()
        except IdTaken:
            if mirror_of is not None:
                raise duplicate(f"{what.capitalize()} {mirror_of.id} already exists") from None
    raise ConflictError(f"Could not allocate a free {what} id; try again")


class IdAllocator:
    def __init__(self, dynamo):
        self.dynamo = dynamo

    def allocate(self, entity: str, count: int = 1) -> list[int]:
        r = self.dynamo.call(
            "update_item", TableName=self.dynamo.table("counters"), Key=encode({"PK": f"COUNTER#{entity}"}),
            UpdateExpression="ADD #v :n", ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":n": value(count)}, ReturnValues="UPDATED_NEW")
        last = int(r["Attributes"]["value"]["N"])
        return list(range(last - count + 1, last + 1))

    def current(self, entity: str) -> int:
        item = self.dynamo.get(self.dynamo.table("counters"), {"PK": f"COUNTER#{entity}"})
        return int(item["value"]) if item else 0

    def seed(self, entity: str, floor: int) -> int:
        """Raise the counter to at least `floor`; never lowers it. Returns the value now."""
        try:
            self.dynamo.call(
                "update_item", TableName=self.dynamo.table("counters"), Key=encode({"PK": f"COUNTER#{entity}"}),
                UpdateExpression="SET #v = :f", ConditionExpression="attribute_not_exists(#v) OR #v < :f",
                ExpressionAttributeNames={"#v": "value"}, ExpressionAttributeValues={":f": value(floor)})
        except ClientError as exc:
            if not condition_failed(exc):
                raise
        return self.current(entity)

    def ensure_id(self, entity: str, given) -> int:
        """The ID MySQL produced (same value, as int), or a fresh one from the counter."""
        return int(given) if given is not None else self.allocate(entity)[0]
