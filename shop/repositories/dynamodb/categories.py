"""Categories in DynamoDB: one partition holds them all (a store has tens to hundreds),
so every read is a single strongly consistent Query and the tree is built in memory."""
from __future__ import annotations

from botocore.exceptions import ClientError

from ...domain import Category
from ...errors import ConflictError, DuplicateError, InvalidStateError, NotFoundError
from . import keys
from ...text import fold_key
from .catalog_items import to_category
from .copies import PENDING, after_commit, clear_pending, pending_token, rewrite_copies
from .counters import IdTaken, create_with_free_id
from .client import cancellation_codes, check_size, encode, exists_check, held_version, holds, iso, utcnow
from .errors import Superseded


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
        """The category whose name folds like `name` (shop/text.py): names are unique so."""
        key = fold_key(name)
        matches = [c for c in self._all() if fold_key(c.name) == key]
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

    def create(self, name: str, parent_id: int | None = None, owner_id: int | None = None, *,
               mirror_of: Category | None = None) -> Category:
        return create_with_free_id(lambda: self._create(name, parent_id, owner_id, mirror_of), "category", mirror_of,
                                   lambda m: DuplicateError(m, field="id"))

    def _create(self, name, parent_id, owner_id, mirror_of) -> Category:
        """One transaction: the category, and the guard of its folded name, each only if absent
        (DuplicateError(field='name') when another category's name folds alike)."""
        if mirror_of is not None:
            name, parent_id, owner_id = mirror_of.name, mirror_of.parent_id, mirror_of.owner_id
        category_id = self.ids.ensure_id("category", mirror_of.id if mirror_of else None)
        item = {**keys.category(category_id), "entity": "CATEGORY", "id": category_id, "name": name,
                "parent_id": parent_id, "owner_id": owner_id,
                "created_at": iso(mirror_of.created_at if mirror_of else utcnow()),
                "version": mirror_of.version if mirror_of else 1}
        check_size(encode(item), "category")
        actions = [{"Put": {"TableName": self.table, "Item": encode(item),
                            "ConditionExpression": "attribute_not_exists(PK)"}},
                   {"Put": {"TableName": self.table, "Item": encode(_guard(name, category_id)),
                            "ConditionExpression": "attribute_not_exists(PK)"}}]
        if parent_id is not None:
            actions.append(exists_check(self.table, keys.category(parent_id)))
        try:
            self.dynamo.transact(actions)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes[2:] == [_CCF]:
                raise NotFoundError("Parent category not found") from exc
            if codes[1:2] == [_CCF]:
                raise DuplicateError("Category name already exists", field="name") from exc
            if codes[:1] == [_CCF]:
                raise IdTaken(category_id) from exc
            raise
        return to_category(item)

    def update(self, category_id: int, changes: dict, *, mirror_of: Category | None = None) -> Category | None:
        unknown = set(changes) - {"name", "parent_id", "owner_id"}
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if mirror_of is not None:  # MySQL's resulting row, whole
            changes = {"name": mirror_of.name, "parent_id": mirror_of.parent_id, "owner_id": mirror_of.owner_id}
        if not changes:
            return self.get_by_id(category_id)
        release = True  # the old name's guard; not where another category holds it (data from before guards)
        for _ in range(_ATTEMPTS):
            old = self.dynamo.get(self.table, keys.category(category_id))
            if old is None:
                return None
            if mirror_of is not None and held_version(old) >= mirror_of.version:
                raise Superseded(f"category {category_id}", held_version(old), mirror_of.version)
            # The rename's fan-out to the products (and their orders) is marked pending in the
            # same write, and cleared once done: a fan-out cut short is taken up by the next update.
            token = pending_token()
            new = {k: v for k, v in {**old, **changes, PENDING: token}.items() if v is not None}
            new["version"] = mirror_of.version if mirror_of else held_version(old) + 1
            check_size(encode(new), "category")
            same, names, values = holds(old, ("name", "version"), "o")  # unchanged since read
            actions = [{"Put": {"TableName": self.table, "Item": encode(new), "ConditionExpression": same,
                                "ExpressionAttributeNames": names, **_values(values)}}]
            if fold_key(new["name"]) != fold_key(old["name"]):  # the name's guard moves with it
                actions += [{"Put": {"TableName": self.table, "Item": encode(_guard(new["name"], category_id)),
                                     "ConditionExpression": "attribute_not_exists(PK) OR category_id = :c",
                                     "ExpressionAttributeValues": encode({":c": category_id})}}]
                actions += [_release(self.table, old["name"], category_id)] if release else []
            try:
                self.dynamo.transact(actions)
            except ClientError as exc:
                codes = cancellation_codes(exc)
                if codes[1:2] == [_CCF]:
                    raise DuplicateError("Category name already exists", field="name") from exc
                release = release and codes[2:3] != [_CCF]
                if _CCF in codes:
                    continue  # changed meanwhile: read again
                raise
            break
        else:
            raise ConflictError("The category kept changing while it was updated; try again")
        category = to_category(new)
        if category.name != old["name"] or old.get(PENDING):  # a rename, or one cut short before
            after_commit(f"category {category_id}", rewrite_copies, self.dynamo, "category", category_id,
                         {"category_name": category.name}, token)
        else:
            clear_pending(self.dynamo, keys.category(category_id), token)  # nothing to fan out
        return category

    def delete(self, category_id: int) -> bool:
        """The category and its name's guard, in one transaction."""
        release = True
        for _ in range(_ATTEMPTS):
            current = self.dynamo.get(self.table, keys.category(category_id))
            if current is None:
                return False
            if self.list_children(category_id):
                raise InvalidStateError("Cannot delete category with child categories")
            r = self.dynamo.call("query", TableName=self.table, IndexName="GSI2", Limit=1,
                                 KeyConditionExpression="GSI2PK = :pk",
                                 ExpressionAttributeValues=encode({":pk": f"CATEGORY#{category_id}"}))
            if r.get("Items"):
                raise ConflictError("Cannot delete category that still has products")
            actions = [{"Delete": {"TableName": self.table, "Key": encode(keys.category(category_id)),
                                   "ConditionExpression": "attribute_exists(PK) AND #n = :n",
                                   "ExpressionAttributeNames": {"#n": "name"},
                                   "ExpressionAttributeValues": encode({":n": current["name"]})}}]
            actions += [_release(self.table, current["name"], category_id)] if release else []
            try:
                self.dynamo.transact(actions)
            except ClientError as exc:
                codes = cancellation_codes(exc)
                release = release and codes[1:2] != [_CCF]  # the guard is another category's
                if _CCF in codes:
                    continue  # renamed or deleted meanwhile: read again
                raise
            return True
        raise ConflictError("The category kept changing while it was deleted; try again")


_CCF = "ConditionalCheckFailed"
_ATTEMPTS = 16


def _guard(name: str, category_id: int) -> dict:
    return {**keys.category_name(name), "entity": "CATEGORYNAME", "category_id": int(category_id)}


def _release(table: str, name: str, category_id: int) -> dict:
    """Delete a name's guard if it is this category's (or is gone: written before guards)."""
    return {"Delete": {"TableName": table, "Key": encode(keys.category_name(name)),
                       "ConditionExpression": "attribute_not_exists(PK) OR category_id = :c",
                       "ExpressionAttributeValues": encode({":c": int(category_id)})}}


def _values(values: dict) -> dict:
    return {"ExpressionAttributeValues": encode(values)} if values else {}
