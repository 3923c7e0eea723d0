"""Copy entities from MySQL's current state into DynamoDB (repair), and compare the two
stores entity by entity (verify).

Repair replays state, not operations: running it twice, or on an entity that was never
broken, leaves DynamoDB equal to MySQL. Both use plain, unrouted repositories.
"""
from __future__ import annotations

from ..domain import NewProduct, NewUser
from ..repositories.dynamodb import keys
from ..repositories.dynamodb.client import encode
from ..repositories.dynamodb.orders import order_item
from .compare import diff

ENTITIES = ("user", "category", "product", "cart", "order")
ID_SOURCES = {"user": "users", "category": "categories", "product": "products", "cart": "shopping_carts",
              "order": "orders", "order_item": "order_items"}


def seed_counters_from_mysql(db, dynamo, gap: int = 1000) -> dict:
    """Raise DynamoDB's id counters to MySQL's largest ids + gap; returns {entity: (mysql max, counter)}."""
    from ..repositories.dynamodb import IdAllocator

    ids, out = IdAllocator(dynamo), {}
    with db.cursor() as cur:
        for entity, table in ID_SOURCES.items():
            cur.execute(f"SELECT COALESCE(MAX(id), 0) AS m FROM {table}")
            top = cur.fetchone()["m"]
            out[entity] = (top, ids.seed(entity, top + gap))
    return out


class Sync:
    def __init__(self, db, mysql_repos, ddb_repos, dynamo):
        self.db, self.mysql, self.ddb, self.dynamo = db, mysql_repos, ddb_repos, dynamo

    # --- repair: make DynamoDB hold what MySQL holds ----------------------------------------

    def repair(self, entity: str, entity_id: str) -> None:
        getattr(self, f"_sync_{entity}")(int(entity_id))

    def _sync_user(self, user_id: int) -> None:
        source = self.mysql.users.get_by_id(user_id)
        current = self.ddb.users.get_by_id(user_id)
        if current is not None:
            users = self.dynamo.table("users")
            self.dynamo.transact([{"Delete": {"TableName": users, "Key": encode(k)}} for k in (
                keys.user(user_id), keys.username_guard(current.username), keys.email_guard(current.email))])
        if source is not None:
            self.ddb.users.create(NewUser(username=source.username, email=source.email,
                                          password_hash=source.password_hash, first_name=source.first_name,
                                          last_name=source.last_name), mirror_of=source)

    def _sync_category(self, category_id: int) -> None:
        source = self.mysql.categories.get_by_id(category_id)
        self.dynamo.call("delete_item", TableName=self.dynamo.table("catalog"),
                         Key=encode(keys.category(category_id)))
        if source is not None:
            if source.parent_id is not None and self.ddb.categories.get_by_id(source.parent_id) is None:
                self._sync_category(source.parent_id)
            self.ddb.categories.create(source.name, source.parent_id, mirror_of=source)

    def _sync_product(self, product_id: int) -> None:
        source = self.mysql.products.get_by_id(product_id)
        if source is None:
            if self.ddb.products.get_by_id(product_id) is not None:
                self.dynamo.call("delete_item", TableName=self.dynamo.table("catalog"),
                                 Key=encode(keys.product(product_id)))
            self._drop_cart_lines(product_id)
            return
        if self.ddb.categories.get_by_id(source.category_id) is None:
            self._sync_category(source.category_id)
        self.dynamo.call("delete_item", TableName=self.dynamo.table("catalog"), Key=encode(keys.product(product_id)))
        self.ddb.products.create(source.seller_id, NewProduct(
            category_id=source.category_id, name=source.name, price=source.price,
            inventory_quantity=source.inventory_quantity, description=source.description,
            image_url=source.image_url), mirror_of=source)
        with self.db.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM order_items WHERE product_id = %s", (product_id,))
            ordered = cur.fetchone()["n"]
        self.dynamo.call("update_item", TableName=self.dynamo.table("catalog"), Key=encode(keys.product(product_id)),
                         UpdateExpression="SET times_ordered = :n", ExpressionAttributeValues=encode({":n": ordered}))

    def _drop_cart_lines(self, product_id: int) -> None:
        users = self.dynamo.table("users")
        lines = self.dynamo.query_all(TableName=users, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk",
                                      ExpressionAttributeValues=encode({":pk": f"PRODUCT#{product_id}"}))
        self.dynamo.batch_delete(users, [{"PK": ln["PK"], "SK": ln["SK"]} for ln in lines])

    def _sync_cart(self, user_id: int) -> None:
        source = self.mysql.carts.list_items(user_id)
        self.ddb.carts.clear(user_id)
        for line in source:
            if self.ddb.products.get_by_id(line.product_id) is None:
                self._sync_product(line.product_id)
            self.ddb.carts.add_item(user_id, line.product_id, line.quantity, mirror_of=line)

    def _sync_order(self, order_id: int) -> None:
        source = self.mysql.orders.get_by_id(order_id)
        table = self.dynamo.table("orders")
        if source is None:
            self.dynamo.call("delete_item", TableName=table, Key=encode(keys.order(order_id)))
        else:
            self.dynamo.call("put_item", TableName=table, Item=encode(order_item(source)))

    # --- verify: where do the stores differ? -------------------------------------------------

    def targets(self) -> list[tuple[str, int]]:
        """Every entity either store holds, in repair order (parents before children)."""
        ids = {e: set() for e in ENTITIES}
        with self.db.cursor() as cur:
            for entity, sql in (("user", "SELECT id FROM users"), ("category", "SELECT id FROM categories"),
                                ("product", "SELECT id FROM products"), ("order", "SELECT id FROM orders"),
                                ("cart", "SELECT DISTINCT user_id AS id FROM shopping_carts")):
                cur.execute(sql)
                ids[entity].update(r["id"] for r in cur.fetchall())
        for table, kinds in (("users", {"USER": "user", "CART": "cart"}),
                             ("catalog", {"CATEGORY": "category", "PRODUCT": "product"}),
                             ("orders", {"ORDER": "order"})):
            for item in self.dynamo.scan_all(TableName=self.dynamo.table(table),
                                             ProjectionExpression="entity, id, user_id"):
                kind = kinds.get(item.get("entity"))
                if kind == "cart":
                    ids["cart"].add(int(item["user_id"]))
                elif kind:
                    ids[kind].add(int(item["id"]))
        return [(e, i) for e in ENTITIES for i in sorted(ids[e])]

    def compare(self, entity: str, entity_id: int):
        """The entity's own attributes; the products orders and carts show are joined data,
        compared as products of their own."""
        read = {"user": lambda r: r.users.get_by_id(entity_id),
                "category": lambda r: r.categories.get_by_id(entity_id),
                "product": lambda r: r.products.get_by_id(entity_id),
                "cart": lambda r: r.carts.list_items(entity_id),
                "order": lambda r: r.orders.get_by_id(entity_id)}[entity]
        return diff(_own(read(self.mysql)), _own(read(self.ddb)), frozenset({"items"}))


def _own(value):
    from dataclasses import replace
    if isinstance(value, list):
        return [replace(line, product=None) for line in value]
    if value is not None and hasattr(value, "items") and isinstance(getattr(value, "items"), list):
        return replace(value, items=[replace(i, product=None) for i in value.items])
    return value
