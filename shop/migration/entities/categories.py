"""Categories: a two-level tree, all in one DynamoDB partition, each with a guard item of its
folded name. Few: copied one at a time, parents first."""
from __future__ import annotations

from ...repositories.dynamodb import keys
from ...repositories.dynamodb.catalog_items import to_category
from ...repositories.dynamodb.client import encode
from ...repositories.dynamodb.copies import rewrite_copies
from ...repositories.mysql import _rows
from ...text import fold_key
from ..copying import COPIED, newer_wins, marks
from .base import Entity

UPSERT = ("INSERT INTO categories (id, name, parent_id, created_at, name_key, owner_id, version)"
          " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
          + newer_wins(("name", "parent_id", "name_key", "owner_id")))


class Categories(Entity):
    name, repository, repos_attr, key = "category", "CategoryRepository", "categories", "category_id"
    mysql_table, ddb_table, ddb_kind = "categories", "catalog", "CATEGORY"
    counters = (("category", "categories"),)
    parents = ("user",)  # its owner

    def read(self, repos, entity_id):
        return repos.categories.get_by_id(entity_id)

    def load_mysql(self, db, repos, ids):
        with db.cursor() as cur:
            cur.execute(f"SELECT * FROM categories WHERE id IN ({marks(ids)})", ids)
            return {r["id"]: _rows.category(r) for r in cur.fetchall()}

    def load_dynamodb(self, dynamo, repos, ids):
        found = dynamo.batch_get(dynamo.table("catalog"), [keys.category(i) for i in ids])
        return {int(i["id"]): to_category(i) for i in found}

    def to_dynamodb(self, copier, category_id, deleted):
        source = copier.mysql.categories.get_by_id(category_id)
        if source is None:
            return copier.forward_gone(copier.ddb.categories.get_by_id(category_id), deleted,
                                       "catalog", keys.category(category_id))
        dynamo = copier.dynamo
        current = copier.ddb.categories.get_by_id(category_id)
        dynamo.call("delete_item", TableName=dynamo.table("catalog"), Key=encode(keys.category(category_id)))
        for name in {c.name for c in (current, source) if c is not None}:  # its name guards, re-put below
            dynamo.call("delete_item", TableName=dynamo.table("catalog"), Key=encode(keys.category_name(name)),
                        ConditionExpression="attribute_not_exists(PK) OR category_id = :c",
                        ExpressionAttributeValues=encode({":c": category_id}))
        if source.parent_id is not None and copier.ddb.categories.get_by_id(source.parent_id) is None:
            self.to_dynamodb(copier, source.parent_id, False)
        copier.ddb.categories.create(source.name, source.parent_id, mirror_of=source)
        if current is not None:  # its products (and their orders) show its name: a rename, or
            # one whose fan-out was cut short, is finished here
            rewrite_copies(dynamo, "category", category_id, {"category_name": source.name})
        return COPIED

    def to_mysql(self, copier, category_id, deleted):
        c = copier.ddb.categories.get_by_id(category_id)
        if c is None:
            return copier.reverse_gone("categories", category_id, deleted)
        if c.parent_id is not None:
            copier.copy_parent("category", c.parent_id)
        with copier.db.cursor(write=True) as cur:
            cur.execute(UPSERT, (c.id, c.name, c.parent_id, c.created_at, fold_key(c.name), c.owner_id, c.version or 1))
        return COPIED


CATEGORIES = Categories()
