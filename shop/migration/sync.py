"""Copy entities between the stores in either direction, and compare them.

Copies replay state, not operations: copying twice, or copying an entity that was never
broken, leaves the target equal to the source. Only a recorded deletion deletes: an entity
the source lacks is otherwise left alone in the target and reported ("left"). The reverse copy
(DynamoDB -> MySQL) keeps DynamoDB's ids and refuses to overwrite a MySQL row that belongs to
someone else (an id collision), rather than cross two records.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import pymysql

from ..domain import NewProduct, NewUser
from ..repositories.dynamodb import keys
from ..repositories.dynamodb.client import encode
from ..repositories.dynamodb.copies import (PENDING, line_items, rewrite_copies, rewrite_order_copies, settle,
                                           shown_from_item, shown_from_product)
from ..repositories.dynamodb.orders import order_item
from ..aspects.compare import diff, own
from ..db import error_code, translate
from ..repositories.dynamodb.carts import line_item
from ..text import fold, fold_key
from .entities import BY_NAME, ENTITIES, NAMES

log = logging.getLogger("shop.migration")
COPIED, DELETED, LEFT, ABSENT = "copied", "deleted", "left", "absent"


def newer_wins(columns) -> str:
    """ON DUPLICATE KEY UPDATE assignments that take the copied row only where its version is
    at least the row's: a copy back never overwrites a newer MySQL row (the order both stores
    keep). `version` comes last: MySQL's later assignments read the values set before them."""
    take = "VALUES(version) >= version"
    return ", ".join([f"{c} = IF({take}, VALUES({c}), {c})" for c in columns]
                     + ["version = GREATEST(version, VALUES(version))"])


# The reverse copy's upserts (one row here, a page in batches.ReverseWriter): ids kept, the
# owner (seller, buyer) never changed by an upsert (a different owner is an id collision).
PRODUCT_UPSERT = (
    "INSERT INTO products (id, seller_id, category_id, name, description, price, inventory_quantity,"
    " image_url, created_at, updated_at, name_fold, description_fold, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
    + newer_wins(("category_id", "name", "description", "price", "inventory_quantity", "image_url", "updated_at",
                  "name_fold", "description_fold")))
ORDER_UPSERT = (
    "INSERT INTO orders (id, user_id, total_amount, status, created_at, updated_at, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
    + newer_wins(("total_amount", "status", "updated_at")))
USER_UPSERT = (
    "INSERT INTO users (id, username, email, password_hash, first_name, last_name, is_seller, created_at,"
    " updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
    + newer_wins(("email", "password_hash", "first_name", "last_name", "is_seller", "updated_at")))
CATEGORY_UPSERT = (
    "INSERT INTO categories (id, name, parent_id, created_at, name_key, owner_id, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE " + newer_wins(("name", "parent_id", "name_key", "owner_id")))


def product_row(p) -> tuple:
    return (p.id, p.seller_id, p.category_id, p.name, p.description, p.price, p.inventory_quantity, p.image_url,
            p.created_at, p.updated_at, fold(p.name), fold(p.description or ""), p.version or 1)


def order_row(o) -> tuple:
    return (o.id, o.user_id, o.total_amount, o.status, o.created_at, o.updated_at, o.version or 1)


def user_row(u) -> tuple:
    return (u.id, u.username, u.email, u.password_hash, u.first_name, u.last_name, u.is_seller, u.created_at,
            u.updated_at, u.version or 1)


class IdCollision(RuntimeError):
    """The target holds a different record under the same id: nothing is overwritten."""


def owner_collision(what: str, entity_id, owner: str, mysql_owner, ddb_owner) -> IdCollision | None:
    """The collision when the two stores give one id to different owners (a product's seller,
    an order's user), else None (no MySQL row, or the same owner)."""
    if mysql_owner is None or ddb_owner is None or int(mysql_owner) == int(ddb_owner):
        return None
    return IdCollision(f"{what} {entity_id} belongs to {owner} {mysql_owner} in MySQL and to {owner} {ddb_owner}"
                       " in DynamoDB")


def seed_counters_from_mysql(db, dynamo, gap: int = 1000) -> dict:
    """Raise DynamoDB's id counters to MySQL's largest ids + gap; returns {counter: (mysql max, counter)}."""
    from ..repositories.dynamodb import IdAllocator

    ids, out = IdAllocator(dynamo), {}
    with db.cursor() as cur:
        for entity in ENTITIES:
            for counter, table in zip(entity.counters, entity.mysql_tables):
                cur.execute(f"SELECT COALESCE(MAX(id), 0) AS m FROM {table}")
                top = cur.fetchone()["m"]
                out[counter] = (top, ids.seed(counter, top + gap))
    return out


def raise_auto_increment(db, dynamo, gap: int = 1000, lock_wait_s: int = 10) -> dict:
    """Raise MySQL's AUTO_INCREMENT past DynamoDB's counters + gap, so ids MySQL hands out
    after a rollback never meet ids DynamoDB handed out. Never lowers. {table: value}."""
    from ..repositories.dynamodb import IdAllocator

    ids, out = IdAllocator(dynamo), {}
    for entity in ENTITIES:
        for counter, table in zip(entity.counters, entity.mysql_tables):
            for attempt in range(3):
                try:
                    out[table] = _alter_auto_increment(db, table, ids.current(counter) + gap, lock_wait_s)
                    break
                except Exception as exc:  # noqa: BLE001 - only a wait (lock, deadlock, timeout) is tried again
                    if error_code(exc) not in (1205, 1213, 2013) or attempt == 2:
                        raise translate(exc) from exc
                    log.warning("AUTO_INCREMENT waited for a lock; trying again", extra={
                        "event": "repair", "action": "auto_increment", "entity": table})
    return out


def _alter_auto_increment(db, table: str, floor: int, lock_wait_s: int) -> int:
    """ALTER waits for every open transaction on the table (a metadata lock): under traffic it
    waits `lock_wait_s`, not until the connection times out. On a connection of its own: the
    pool retries a failed statement on a new session, which would lose the lock wait."""
    # An in-place ALTER takes its metadata lock in more than one step, each waiting up to
    # lock_wait_s: the read timeout must outlast them, or the client gives up first (2013).
    conn = pymysql.connect(**{**db.connect_kwargs(), "read_timeout": 3 * int(lock_wait_s) + 10})
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = %s", (int(lock_wait_s),))
            cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
            floor = max(floor, cur.fetchone()[0] + 1)
            cur.execute(f"ALTER TABLE {table} AUTO_INCREMENT = {int(floor)}")
        return floor
    finally:
        conn.close()


_PARENT_TABLES = {"user": "users", "category": "categories", "product": "products"}
LOCK_WAIT_S = 10


class LockTimeout(TimeoutError):
    pass


@contextmanager
def entity_lock(db, entity: str, entity_id):
    """MySQL's named lock for copying one entity back, on a connection of its own (closing it
    releases the lock, whatever happened in between)."""
    conn = pymysql.connect(**{**db.connect_kwargs(), "autocommit": True})
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (f"shop.copy.{entity}.{entity_id}", LOCK_WAIT_S))
            if cur.fetchone()[0] != 1:
                raise LockTimeout(f"{entity} {entity_id} is being copied by another process: waited {LOCK_WAIT_S} s")
        yield
    finally:
        conn.close()


class Sync:
    def __init__(self, db, mysql_repos, ddb_repos, dynamo):
        self.db, self.mysql, self.ddb, self.dynamo = db, mysql_repos, ddb_repos, dynamo

    @classmethod
    def of(cls, db, dynamo) -> "Sync":
        """Over repositories of its own: not bound to a router, so plain calls to each store."""
        from .. import Repositories
        return cls(db, Repositories.mysql(db), Repositories.dynamodb(dynamo), dynamo)

    def copy(self, direction: str, entity: str, entity_id, deleted: bool = False) -> str:
        """Make the target hold what the source holds for one entity; returns what it did."""
        prefix = "_forward_" if direction == "to_dynamodb" else "_reverse_"
        return getattr(self, prefix + entity)(int(entity_id), deleted)

    # --- MySQL -> DynamoDB ------------------------------------------------------------------

    def _forward_user(self, user_id: int, deleted: bool) -> str:
        source = self.mysql.users.get_by_id(user_id)
        current = self.ddb.users.get_by_id(user_id)
        if source is None and (current is None or not deleted):
            return ABSENT if current is None else LEFT
        if current is not None and source is not None and current.username.lower() != source.username.lower():
            raise IdCollision(f"user {user_id} is {source.username!r} in MySQL and {current.username!r} in DynamoDB")
        if current is not None:
            self._delete_user(current)
        if source is None:
            return DELETED
        try:
            self._create_user(source)
        except Exception:
            if current is not None:
                self._create_user(current)  # put back what was there: never leave the user deleted
            raise
        if current is not None:  # the seller's products show the email: a change, or one whose
            # fan-out was cut short, is finished here
            rewrite_copies(self.dynamo, "seller", user_id, {"seller_email": source.email})
        return COPIED

    def _delete_user(self, user) -> None:
        users = self.dynamo.table("users")
        self.dynamo.transact([{"Delete": {"TableName": users, "Key": encode(k)}} for k in (
            keys.user(user.id), keys.username_guard(user.username), keys.email_guard(user.email))])

    def _create_user(self, user) -> None:
        self.ddb.users.create(NewUser(username=user.username, email=user.email, password_hash=user.password_hash,
                                      first_name=user.first_name, last_name=user.last_name), mirror_of=user)

    def _forward_category(self, category_id: int, deleted: bool) -> str:
        source = self.mysql.categories.get_by_id(category_id)
        if source is None:
            return self._forward_gone(self.ddb.categories.get_by_id(category_id), deleted,
                                      "catalog", keys.category(category_id))
        current = self.ddb.categories.get_by_id(category_id)
        self.dynamo.call("delete_item", TableName=self.dynamo.table("catalog"), Key=encode(keys.category(category_id)))
        for name in {c.name for c in (current, source) if c is not None}:  # its name guards, re-put below
            self.dynamo.call("delete_item", TableName=self.dynamo.table("catalog"), Key=encode(keys.category_name(name)),
                             ConditionExpression="attribute_not_exists(PK) OR category_id = :c",
                             ExpressionAttributeValues=encode({":c": category_id}))
        if source.parent_id is not None and self.ddb.categories.get_by_id(source.parent_id) is None:
            self._forward_category(source.parent_id, False)
        self.ddb.categories.create(source.name, source.parent_id, mirror_of=source)
        if current is not None:  # its products (and their orders) show its name: a rename, or
            # one whose fan-out was cut short, is finished here
            rewrite_copies(self.dynamo, "category", category_id, {"category_name": source.name})
        return COPIED

    def _forward_product(self, product_id: int, deleted: bool) -> str:
        source = self.mysql.products.get_by_id(product_id)
        if source is None:
            if self.ddb.products.get_by_id(product_id) is None:
                return ABSENT
            if not deleted:
                return LEFT
            self.ddb.products.delete(product_id)  # uncounted from the listings, cart lines dropped
            return DELETED
        if self.ddb.categories.get_by_id(source.category_id) is None:
            self._forward_category(source.category_id, False)
        was = self.dynamo.get(self.dynamo.table("catalog"), keys.product(product_id))
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
        if ordered and (was is None or was.get(PENDING) or shown_from_item(was) != shown_from_product(source)):
            rewrite_order_copies(self.dynamo, product_id)  # a lost rename, or a fan-out cut short
        return COPIED

    def _forward_gone(self, current, deleted: bool, table: str, key: dict) -> str:
        if current is None:
            return ABSENT
        if not deleted:
            return LEFT
        self.dynamo.call("delete_item", TableName=self.dynamo.table(table), Key=encode(key))
        return DELETED

    def _forward_cart(self, user_id: int, deleted: bool) -> str:
        if self.mysql.users.get_by_id(user_id) is None:
            return LEFT if self.ddb.carts.list_items(user_id) else ABSENT  # a DynamoDB-only account's cart
        source = self.mysql.carts.list_items(user_id)
        self.ddb.carts.clear(user_id)
        for line in source:
            if self.ddb.products.get_by_id(line.product_id) is None:
                self._forward_product(line.product_id, False)
        self.dynamo.batch_put(self.dynamo.table("users"), [line_item(line) for line in source])
        return COPIED

    def _forward_order(self, order_id: int, deleted: bool) -> str:
        source = self.mysql.orders.get_by_id(order_id)
        table = self.dynamo.table("orders")
        current = self.ddb.orders.get_by_id(order_id)
        if source is None:
            outcome = self._forward_gone(current, deleted, "orders", keys.order(order_id))
            if outcome == DELETED:
                self.dynamo.batch_delete(table, [keys.order_line(p, order_id) for p in {i.product_id for i in current.items}])
            return outcome
        collision = owner_collision("order", order_id, "user", source.user_id, current and current.user_id)
        if collision:
            raise collision
        # Lines first (a rename's fan-out finds the order as soon as it exists), then the order,
        # then its copies settled against the product items as they are now.
        self.dynamo.batch_write(table, [{"PutRequest": {"Item": encode(line)}} for line in line_items(source)])
        self.dynamo.call("put_item", TableName=table, Item=encode(order_item(source)))
        settle(self.dynamo, [source])
        return COPIED

    # --- DynamoDB -> MySQL (rollback out of phase 5) --------------------------------------------

    def _mysql_row(self, sql: str, args) -> dict | None:
        with self.db.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()

    def _reverse_gone(self, table: str, entity_id: int, deleted: bool) -> str:
        if self._mysql_row(f"SELECT id FROM {table} WHERE id = %s", (entity_id,)) is None:
            return ABSENT
        if not deleted:
            return LEFT
        with self.db.cursor(write=True) as cur:
            cur.execute(f"DELETE FROM {table} WHERE id = %s", (entity_id,))
        return DELETED

    def _reverse_user(self, user_id: int, deleted: bool) -> str:
        u = self.ddb.users.get_by_id(user_id)
        if u is None:
            return self._reverse_gone("users", user_id, deleted)
        mine = self._mysql_row("SELECT username FROM users WHERE id = %s", (user_id,))
        if mine is not None and mine["username"].lower() != u.username.lower():
            raise IdCollision(f"user {user_id} is {mine['username']!r} in MySQL and {u.username!r} in DynamoDB")
        # username and email are unique keys too: an upsert would update whichever row holds them.
        other = self._mysql_row("SELECT id FROM users WHERE (username = %s OR email = %s) AND id <> %s",
                                (u.username, u.email, user_id))
        if other is not None:
            raise IdCollision(f"user {user_id}'s username or email belongs to user {other['id']} in MySQL")
        with self.db.cursor(write=True) as cur:
            cur.execute(USER_UPSERT, user_row(u))
        return COPIED

    def _reverse_category(self, category_id: int, deleted: bool) -> str:
        c = self.ddb.categories.get_by_id(category_id)
        if c is None:
            return self._reverse_gone("categories", category_id, deleted)
        if c.parent_id is not None and self._mysql_row("SELECT id FROM categories WHERE id = %s", (c.parent_id,)) is None:
            self._reverse_category(c.parent_id, False)
        with self.db.cursor(write=True) as cur:
            cur.execute(CATEGORY_UPSERT, (c.id, c.name, c.parent_id, c.created_at, fold_key(c.name), c.owner_id,
                                          c.version or 1))
        return COPIED

    def _reverse_product(self, product_id: int, deleted: bool) -> str:
        p = self.ddb.products.get_by_id(product_id)
        if p is None:
            return self._reverse_gone("products", product_id, deleted)
        mine = self._mysql_row("SELECT seller_id FROM products WHERE id = %s", (product_id,))
        collision = owner_collision("product", product_id, "seller", mine and mine["seller_id"], p.seller_id)
        if collision:
            raise collision
        self._reverse_parents(user_id=p.seller_id, category_id=p.category_id)
        with self.db.cursor(write=True) as cur:
            cur.execute(PRODUCT_UPSERT, product_row(p))
        return COPIED

    def _reverse_parents(self, user_id=None, category_id=None, product_ids=()) -> None:
        if user_id is not None:
            self.copy_parent("user", user_id)
        if category_id is not None:
            self.copy_parent("category", category_id)
        for product_id in product_ids:
            self.copy_parent("product", product_id)

    def copy_parent(self, entity: str, entity_id: int) -> None:
        """Copy a parent MySQL lacks, under its lock (shop.migration.catchup) and only if it still
        lacks it then: a copy of its own may have brought a newer state meanwhile. Locks are
        taken child before parent (order, cart -> product -> user, category): never a cycle."""
        table = _PARENT_TABLES[entity]
        if self._mysql_row(f"SELECT id FROM {table} WHERE id = %s", (entity_id,)) is not None:
            return
        with entity_lock(self.db, entity, entity_id):
            if self._mysql_row(f"SELECT id FROM {table} WHERE id = %s", (entity_id,)) is None:
                getattr(self, "_reverse_" + entity)(int(entity_id), False)

    def _reverse_cart(self, user_id: int, deleted: bool) -> str:
        if self.ddb.users.get_by_id(user_id) is None:
            return LEFT if self.mysql.carts.list_items(user_id) else ABSENT
        lines = self.ddb.carts.list_items(user_id)
        self._reverse_parents(user_id=user_id, product_ids=[ln.product_id for ln in lines])
        with self.db.cursor(write=True) as cur:
            cur.execute("DELETE FROM shopping_carts WHERE user_id = %s", (user_id,))
            for ln in lines:
                cur.execute("INSERT INTO shopping_carts (id, user_id, product_id, quantity, created_at, updated_at,"
                            " version) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (ln.id, user_id, ln.product_id, ln.quantity, ln.created_at, ln.updated_at, ln.version or 1))
        return COPIED

    def _reverse_order(self, order_id: int, deleted: bool) -> str:
        o = self.ddb.orders.get_by_id(order_id)
        if o is None:
            return self._reverse_gone("orders", order_id, deleted)
        mine = self._mysql_row("SELECT user_id FROM orders WHERE id = %s", (order_id,))
        collision = owner_collision("order", order_id, "user", mine and mine["user_id"], o.user_id)
        if collision:
            raise collision
        self._reverse_parents(user_id=o.user_id, product_ids=[i.product_id for i in o.items])
        with self.db.cursor(write=True) as cur:
            cur.execute(ORDER_UPSERT, order_row(o))
            cur.execute("DELETE FROM order_items WHERE order_id = %s", (order_id,))
            for i in o.items:
                cur.execute("INSERT INTO order_items (id, order_id, product_id, quantity, price_at_time)"
                            " VALUES (%s, %s, %s, %s, %s)", (i.id, order_id, i.product_id, i.quantity, i.price_at_time))
        return COPIED

    # --- where are the entities, and do the stores agree? ---------------------------------------

    def ids_by_store(self) -> dict[str, dict[str, set[int]]]:
        """{"mysql": {entity: ids}, "dynamodb": {entity: ids}}. DynamoDB is listed first: while
        both are written, MySQL is written first, so an entity created during the listing
        cannot look as if only DynamoDB held it."""
        ddb = {e.name: set() for e in ENTITIES}
        kinds = {}
        for e in ENTITIES:
            kinds.setdefault(e.ddb_table, {})[e.ddb_kind] = e
        for table, by_kind in kinds.items():
            for item in self.dynamo.scan_all(TableName=self.dynamo.table(table),
                                             ProjectionExpression="entity, id, user_id"):
                e = by_kind.get(item.get("entity"))
                if e is not None:
                    ddb[e.name].add(int(item[e.ddb_id]))
        mysql = {e.name: set() for e in ENTITIES}
        with self.db.cursor() as cur:
            for e in ENTITIES:
                cur.execute(e.mysql_ids)
                mysql[e.name].update(int(r["id"]) for r in cur.fetchall())
        return {"mysql": mysql, "dynamodb": ddb}

    def targets(self) -> list[tuple[str, int]]:
        """Every entity either store holds, in copy order (parents before children)."""
        found = self.ids_by_store()
        return [(e, i) for e in NAMES for i in sorted(found["mysql"][e] | found["dynamodb"][e])]

    def compare(self, entity: str, entity_id: int):
        """The entity's own attributes; the products orders and carts show are joined data,
        compared as products of their own."""
        assert entity in BY_NAME
        read = {"user": lambda r: r.users.get_by_id(entity_id),
                "category": lambda r: r.categories.get_by_id(entity_id),
                "product": lambda r: r.products.get_by_id(entity_id),
                "cart": lambda r: r.carts.list_items(entity_id),
                "order": lambda r: r.orders.get_by_id(entity_id)}[entity]
        return diff(own(read(self.mysql)), own(read(self.ddb)), frozenset({"items"}))

