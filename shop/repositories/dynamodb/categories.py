"""Categories in DynamoDB: one partition holds them all (a store has tens to hundreds),
so every read is a single strongly consistent Query and the tree is built in memory."""
from __future__ import annotations

from botocore.exceptions import ClientError

from ...domain import Category
from ...errors import ConflictError, DuplicateError, InvalidStateError, NotFoundError
from . import keys
from .catalog_items import rewrite_copies, to_category
from .order_copies import PENDING, after_commit, clear_pending, pending_token
from .counters import IdTaken, create_with_free_id
from .client import cancellation_codes, check_size, condition_failed, decode, encode, exists_check, iso, utcnow


class CategoryRepository:
    def __init__(self, dynamo, ids):
        self.dynamo = dynamo
        self.ids = ids
        self.table = dynamo.table("catalog")

    def _all(self) -> list[Category]:
        items = self.dynamo.query_all(TableName=self.table, ConsistentRead=True,
                                      KeyConditionExpression="PK = :pk",
                                      ExpressionAttributeValues=encode({":pk": "CATEGORIES"}))
        return sorted((to_category(i) for i in items), key=lambda c: (c.name, c.id))

    def list_all(self) -> list[Category]:
        return self._all()

    def get_by_id(self, category_id: int) -> Category | None:
        item = self.dynamo.get(self.table, keys.category(category_id))
        return to_category(item) if item else None

    def get_by_name(self, name: str) -> Category | None:
        matches = [c for c in self._all() if c.name.lower() == name.lower()]
        return min(matches, key=lambda c: c.id) if matches else None

    def list_roots(self) -> list[Category]:
        return [c for c in self._all() if c.parent_id is None]

    def list_children(self, parent_id: int) -> list[Category]:
        return [c for c in self._all() if c.parent_id == parent_id]

    def get_path(self, category_id: int) -> list[Category]:
        by_id = {c.id: c for c in self._all()}
        path, current = [], by_id.get(category_id)
        while current is not None and current not in path:
            path.append(current)
            current = by_id.get(current.parent_id) if current.parent_id is not None else None
        return list(reversed(path))

    def create(self, name: str, parent_id: int | None = None, *, mirror_of: Category | None = None) -> Category:
        return create_with_free_id(lambda: self._create(name, parent_id, mirror_of), "category", mirror_of,
                                   lambda m: DuplicateError(m, field="id"))

    def _create(self, name, parent_id, mirror_of) -> Category:
        if mirror_of is not None:
            name, parent_id = mirror_of.name, mirror_of.parent_id
        category_id = self.ids.ensure_id("category", mirror_of.id if mirror_of else None)
        item = {**keys.category(category_id), "entity": "CATEGORY", "id": category_id, "name": name,
                "parent_id": parent_id, "created_at": iso(mirror_of.created_at if mirror_of else utcnow())}
        check_size(encode(item), "category")
        actions = [{"Put": {"TableName": self.table, "Item": encode(item),
                            "ConditionExpression": "attribute_not_exists(PK)"}}]
        if parent_id is not None:
            actions.append(exists_check(self.table, keys.category(parent_id)))
        try:
            self.dynamo.transact(actions)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes[1:] == ["ConditionalCheckFailed"]:
                raise NotFoundError("Parent category not found") from exc
            if codes[:1] == ["ConditionalCheckFailed"]:
                raise IdTaken(category_id) from exc
            raise
        return to_category(item)

    def update(self, category_id: int, changes: dict, *, mirror_of: Category | None = None) -> Category | None:
        unknown = set(changes) - {"name", "parent_id"}
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if mirror_of is not None:  # MySQL's resulting row
            changes = {"name": mirror_of.name, "parent_id": mirror_of.parent_id}
        if not changes:
            return self.get_by_id(category_id)
        # The rename's fan-out to the products (and their orders) is marked pending in the same
        # write, and cleared once done: a fan-out cut short is taken up by the next update.
        token = pending_token()
        changes = {**changes, PENDING: token}
        sets = [f"#{k} = :{k}" for k, v in changes.items() if v is not None]
        removes = [f"#{k}" for k, v in changes.items() if v is None]
        expression = ("SET " + ", ".join(sets) if sets else "") + (" REMOVE " + ", ".join(removes) if removes else "")
        kwargs = dict(TableName=self.table, Key=encode(keys.category(category_id)),
                      UpdateExpression=expression.strip(), ConditionExpression="attribute_exists(PK)",
                      ExpressionAttributeNames={f"#{k}": k for k in changes}, ReturnValues="ALL_OLD")
        if sets:
            kwargs["ExpressionAttributeValues"] = encode({f":{k}": v for k, v in changes.items() if v is not None})
        try:
            r = self.dynamo.call("update_item", **kwargs)
        except ClientError as exc:
            if condition_failed(exc):
                return None
            raise
        old = decode(r["Attributes"])
        new = {k: v for k, v in {**old, **changes}.items() if v is not None}
        category = to_category(new)
        if category.name != old["name"] or old.get(PENDING):  # a rename, or one cut short before
            after_commit(f"category {category_id}", rewrite_copies, self.dynamo, "category", category_id,
                         {"category_name": category.name}, token)
        else:
            clear_pending(self.dynamo, keys.category(category_id), token)  # nothing to fan out
        return category

    def delete(self, category_id: int) -> bool:
        if self.get_by_id(category_id) is None:
            return False
        if self.list_children(category_id):
            raise InvalidStateError("Cannot delete category with child categories")
        r = self.dynamo.call("query", TableName=self.table, IndexName="GSI2", Limit=1,
                             KeyConditionExpression="GSI2PK = :pk",
                             ExpressionAttributeValues=encode({":pk": f"CATEGORY#{category_id}"}))
        if r.get("Items"):
            raise ConflictError("Cannot delete category that still has products")
        try:
            self.dynamo.call("delete_item", TableName=self.table, Key=encode(keys.category(category_id)),
                             ConditionExpression="attribute_exists(PK)")
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True
