"""Carts: a user's lines, in the user's partition in DynamoDB. A cart is copied whole (its lines
replaced); DynamoDB can only query a cart, so a page of carts is a query per cart, on threads."""
from __future__ import annotations

from ...repositories.dynamodb.carts import line_item
from ..copying import COPIED, LEFT, ABSENT, pool_map
from ..directions import TO_DYNAMODB
from .base import Entity


def _carts(repos, ids) -> dict:
    return {i: lines for i, lines in zip(ids, pool_map(repos.carts.list_items, ids)) if lines}


class Carts(Entity):
    name, repository, repos_attr, key = "cart", "ShoppingCartRepository", "carts", "user_id"
    mysql_table, keyset_column = "shopping_carts", "user_id"
    ddb_table, ddb_kind, ddb_id = "users", "CART", "user_id"
    counters = (("cart", "shopping_carts"),)
    parents = ("user", "product")
    several_items = True  # one item per line
    none = []  # an empty cart: what a copy writes, and a dual write may land on

    def read(self, repos, entity_id):
        return repos.carts.list_items(entity_id)

    def load_mysql(self, db, repos, ids):
        return _carts(repos, ids)

    def load_dynamodb(self, dynamo, repos, ids):
        return _carts(repos, ids)

    def to_dynamodb(self, copier, user_id, deleted):
        if copier.mysql.users.get_by_id(user_id) is None:
            return LEFT if copier.ddb.carts.list_items(user_id) else ABSENT  # a DynamoDB-only account's cart
        source = copier.mysql.carts.list_items(user_id)
        copier.ddb.carts.clear(user_id)
        for line in source:
            if copier.ddb.products.get_by_id(line.product_id) is None:
                copier.copy(TO_DYNAMODB, "product", line.product_id)
        copier.dynamo.batch_put(copier.dynamo.table("users"), [line_item(line) for line in source])
        return COPIED

    def to_mysql(self, copier, user_id, deleted):
        if copier.ddb.users.get_by_id(user_id) is None:
            return LEFT if copier.mysql.carts.list_items(user_id) else ABSENT
        lines = copier.ddb.carts.list_items(user_id)
        copier.copy_parent("user", user_id)
        for line in lines:
            copier.copy_parent("product", line.product_id)
        with copier.db.cursor(write=True) as cur:
            cur.execute("DELETE FROM shopping_carts WHERE user_id = %s", (user_id,))
            for ln in lines:
                cur.execute("INSERT INTO shopping_carts (id, user_id, product_id, quantity, created_at, updated_at,"
                            " version) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (ln.id, user_id, ln.product_id, ln.quantity, ln.created_at, ln.updated_at, ln.version or 1))
        return COPIED


CARTS = Carts()
