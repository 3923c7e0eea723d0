"""Copying one entity between the stores, either way, and comparing it; the id counters each
way; the per-entity lock a copy back holds. What a copy does for each entity is that entity's
module (shop/migration/entities/); this is the machinery around it (the Copier an entity's hooks
are given)."""
from __future__ import annotations

import logging
from contextlib import contextmanager

import pymysql

from ..db import error_code, translate
from ..repositories import Repositories
from ..repositories.dynamodb import IdAllocator
from ..repositories.dynamodb.client import encode
from . import entities
from .copying import ABSENT, DELETED, LEFT, differences, owner_collision
from .directions import of

log = logging.getLogger("shop.migration")
LOCK_WAIT_S = 10


def seed_counters_from_mysql(db, dynamo, gap: int = 1000) -> dict:
    """Raise DynamoDB's id counters to MySQL's largest ids + gap; returns {counter: (mysql max, counter)}."""
    ids, out = IdAllocator(dynamo), {}
    with db.cursor() as cur:
        for entity in entities.REGISTRY:
            for counter, table in entity.counters:
                cur.execute(f"SELECT COALESCE(MAX(id), 0) AS m FROM {table}")
                top = cur.fetchone()["m"]
                out[counter] = (top, ids.seed(counter, top + gap))
    return out


def raise_auto_increment(db, dynamo, gap: int = 1000, lock_wait_s: int = 10) -> dict:
    """Raise MySQL's AUTO_INCREMENT past DynamoDB's counters + gap, so ids MySQL hands out
    after a rollback never meet ids DynamoDB handed out. Never lowers. {table: value}."""
    ids, out = IdAllocator(dynamo), {}
    for entity in entities.REGISTRY:
        for counter, table in entity.counters:
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


class Copier:
    """The stores, through repositories of its own (not bound to a router: plain calls to each
    store), and what every entity's copy needs of them."""

    def __init__(self, db, mysql_repos, ddb_repos, dynamo):
        self.db, self.mysql, self.ddb, self.dynamo = db, mysql_repos, ddb_repos, dynamo

    @classmethod
    def of(cls, db, dynamo) -> "Copier":
        return cls(db, Repositories.mysql(db), Repositories.dynamodb(dynamo), dynamo)

    def copy(self, direction, entity: str, entity_id, deleted: bool = False) -> str:
        """Make the target hold what the source holds for one entity; returns what it did."""
        return of(direction).copy(self, entities.get(entity), entity_id, deleted)

    def compare(self, entity: str, entity_id: int):
        """The entity's own attributes; the products orders and carts show are joined data,
        compared as products of their own."""
        e = entities.get(entity)
        return differences(e.read(self.mysql, entity_id), e.read(self.ddb, entity_id))

    # --- what entities' copies use ---------------------------------------------------------

    def mysql_row(self, sql: str, args) -> dict | None:
        with self.db.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()

    def forward_gone(self, current, deleted: bool, table: str, key: dict) -> str:
        """MySQL lacks the entity: DynamoDB's copy goes only with a recorded deletion."""
        if current is None:
            return ABSENT
        if not deleted:
            return LEFT
        self.dynamo.call("delete_item", TableName=self.dynamo.table(table), Key=encode(key))
        return DELETED

    def reverse_gone(self, table: str, entity_id: int, deleted: bool) -> str:
        """DynamoDB lacks the entity: MySQL's row goes only with a recorded deletion."""
        if self.mysql_row(f"SELECT id FROM {table} WHERE id = %s", (entity_id,)) is None:
            return ABSENT
        if not deleted:
            return LEFT
        with self.db.cursor(write=True) as cur:
            cur.execute(f"DELETE FROM {table} WHERE id = %s", (entity_id,))
        return DELETED

    def check_owner(self, what: str, table: str, owner: str, found) -> None:
        """An id MySQL gives to another owner (a product's seller, an order's buyer) is an id
        collision: nothing is overwritten."""
        mine = self.mysql_row(f"SELECT {owner}_id AS owner FROM {table} WHERE id = %s", (found.id,))
        collision = owner_collision(what, found.id, owner, mine and mine["owner"], getattr(found, f"{owner}_id"))
        if collision:
            raise collision

    def copy_parent(self, entity: str, entity_id: int) -> None:
        """Copy back a parent MySQL lacks, under its lock (shop.migration.catchup) and only if it
        still lacks it then: a copy of its own may have brought a newer state meanwhile. Locks
        are taken child before parent (order, cart -> product -> user, category): never a cycle."""
        e = entities.get(entity)
        held = f"SELECT 1 FROM {e.mysql_table} WHERE {e.keyset_column} = %s LIMIT 1"
        if self.mysql_row(held, (entity_id,)) is not None:
            return
        with entity_lock(self.db, entity, entity_id):
            if self.mysql_row(held, (entity_id,)) is None:
                e.to_mysql(self, int(entity_id), False)

    # --- where are the entities? -------------------------------------------------------------

    def ids_by_store(self) -> dict[str, dict[str, set[int]]]:
        """{"mysql": {entity: ids}, "dynamodb": {entity: ids}}. DynamoDB is listed first: while
        both are written, MySQL is written first, so an entity created during the listing
        cannot look as if only DynamoDB held it."""
        ddb = {e.name: set() for e in entities.REGISTRY}
        for table in entities.DYNAMODB_TABLES:
            kinds = {e.ddb_kind: e for e in entities.REGISTRY if e.ddb_table == table}
            projection, names = entities.ddb_projection(table)
            for item in self.dynamo.scan_all(TableName=self.dynamo.table(table), ProjectionExpression=projection,
                                             ExpressionAttributeNames=names):
                e = kinds.get(item.get("entity"))
                if e is not None:
                    ddb[e.name].add(int(item[e.ddb_id]))
        mysql = {e.name: set() for e in entities.REGISTRY}
        with self.db.cursor() as cur:
            for e in entities.REGISTRY:
                cur.execute(f"SELECT DISTINCT {e.keyset_column} AS id FROM {e.mysql_table}")
                mysql[e.name].update(int(r["id"]) for r in cur.fetchall())
        return {"mysql": mysql, "dynamodb": ddb}

    def targets(self) -> list[tuple[str, int]]:
        """Every entity either store holds, in copy order (parents before children)."""
        found = self.ids_by_store()
        return [(e, i) for e in entities.NAMES for i in sorted(found["mysql"][e] | found["dynamodb"][e])]
