"""The one list of migrated entities: routing's pending checks, the journal, backfill, verify,
repair, the reverse copy and the CLI all iterate it. Parents come before children, so a copy
in this order never writes a row before the rows it references.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entity:
    name: str
    repository: str            # the repository class whose reads and writes concern it
    key: str                   # that repository's parameter naming one entity
    mysql_ids: str             # SQL listing every id MySQL holds
    ddb_table: str             # logical DynamoDB table (Dynamo.table(name))
    ddb_kind: str              # the item's `entity` attribute
    ddb_id: str = "id"         # the item attribute holding the entity's id
    counters: tuple[str, ...] = ()  # DynamoDB id counters that allocate its ids
    mysql_tables: tuple[str, ...] = ()  # MySQL tables whose AUTO_INCREMENT those counters pair with


ENTITIES = (
    Entity("user", "UserRepository", "user_id", "SELECT id FROM users", "users", "USER",
           counters=("user",), mysql_tables=("users",)),
    Entity("category", "CategoryRepository", "category_id", "SELECT id FROM categories", "catalog", "CATEGORY",
           counters=("category",), mysql_tables=("categories",)),
    Entity("product", "ProductRepository", "product_id", "SELECT id FROM products", "catalog", "PRODUCT",
           counters=("product",), mysql_tables=("products",)),
    Entity("cart", "ShoppingCartRepository", "user_id", "SELECT DISTINCT user_id AS id FROM shopping_carts",
           "users", "CART", ddb_id="user_id", counters=("cart",), mysql_tables=("shopping_carts",)),
    Entity("order", "OrderRepository", "order_id", "SELECT id FROM orders", "orders", "ORDER",
           counters=("order", "order_item"), mysql_tables=("orders", "order_items")),
)
BY_NAME = {e.name: e for e in ENTITIES}
BY_REPOSITORY = {e.repository: e for e in ENTITIES}
NAMES = tuple(e.name for e in ENTITIES)


def order_key(target: tuple[str, object]) -> tuple[int, int]:
    """Sort (entity, id) pairs parents first, then by id."""
    return NAMES.index(target[0]), int(target[1])
