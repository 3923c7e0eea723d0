"""Pages of entities: the keyset pages a sync run walks, a page read from each store at once,
and the batched writes that copy a page either way. What a page's copy is for each entity is
its module's (Entity.plan_page, Entity.write_page_to_mysql); this sends it."""
from __future__ import annotations

from . import entities
from .copying import marks, owner_collision, pool_map, pool_retrying
from .directions import TO_DYNAMODB, TO_MYSQL


def mysql_chunk(db, entity: str, after: int | None, lower: int | None, upper: int | None, limit: int) -> list[int]:
    """The next `limit` ids above `after` within [lower, upper), in id order: a keyset page."""
    e = entities.get(entity)
    where, args = [], []
    for op, bound in ((">", after), (">=", lower), ("<", upper)):
        if bound is not None:
            where.append(f"{e.keyset_column} {op} %s")
            args.append(bound)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    with db.cursor() as cur:
        cur.execute(f"SELECT DISTINCT {e.keyset_column} AS id FROM {e.mysql_table}{clause}"
                    f" ORDER BY {e.keyset_column} LIMIT %s", (*args, limit))
        return [int(r["id"]) for r in cur.fetchall()]


def mysql_existing(db, entity: str, ids) -> set[int]:
    ids = sorted(set(ids))
    if not ids:
        return set()
    e = entities.get(entity)
    with db.cursor() as cur:
        cur.execute(f"SELECT DISTINCT {e.keyset_column} AS id FROM {e.mysql_table}"
                    f" WHERE {e.keyset_column} IN ({marks(ids)})", ids)
        return {int(r["id"]) for r in cur.fetchall()}


def mysql_load(db, repos, entity: str, ids: list[int]) -> dict[int, object]:
    """{id: what MySQL's repository would return} for the ids MySQL holds."""
    return entities.get(entity).load_mysql(db, repos, ids) if ids else {}


def ddb_load(dynamo, repos, entity: str, ids: list[int]) -> dict[int, object]:
    """{id: what DynamoDB's repository would return} for the ids DynamoDB holds."""
    return entities.get(entity).load_dynamodb(dynamo, repos, ids) if ids else {}


class ForwardWriter:
    """Copies pages of MySQL's entities into DynamoDB with batched writes, in two stages so a
    page's reads can run while the page before it is written: `plan` reads what the writes
    depend on and decides them, `write` sends them. Returns, per id, the outcome ("copied") or
    the exception that stopped it; entities it cannot batch safely go through the Copier."""

    def __init__(self, copier):
        self.copier, self.dynamo, self.db = copier, copier.dynamo, copier.db

    def plan(self, entity: str, source: dict[int, object], current: dict[int, object], blind=False):
        """What to write for a page: {id: MySQL's value} against {id: DynamoDB's value}
        (`blind`: DynamoDB not read, taken as holding none of them)."""
        return entities.get(entity).plan_page(self, source, current, blind)

    def write(self, entity: str, plan) -> dict[int, object]:
        """Send a page's writes, several requests at once (DynamoDB takes concurrent requests
        better than one after another: bench/sync_scale.py)."""
        out = dict(plan.decided)
        for jobs in (plan.jobs, *plan.then):
            for part in pool_map(lambda job: job(), jobs):
                out.update(part)
        return out

    def one_by_one(self, entity: str, ids: list[int]) -> dict[int, object]:
        return dict(zip(ids, pool_retrying(lambda i: self.copier.copy(TO_DYNAMODB, entity, i), ids)))

    def puts(self, table: str, writes: list[tuple[int, dict]]) -> list:
        """(id, write request) pairs as jobs of 25 requests, each answering "copied" for its ids
        (an entity whose items span two jobs is copied when both are sent: a failure stops the run)."""
        def job(chunk):
            return lambda: (self.dynamo.batch_write(table, [w for _, w in chunk]),
                            {i: "copied" for i, _ in chunk})[1]
        return [job(writes[i:i + 25]) for i in range(0, len(writes), 25)]


class ReverseWriter:
    """Copies pages of DynamoDB's entities into MySQL, ids kept: one batched read in each store,
    the collision checks for the whole page in one query, missing parents copied first (one at a
    time: they are few), then one multi-row upsert (Entity.write_page_to_mysql). Entities without
    one go one at a time. Returns {id: outcome or exception}."""

    def __init__(self, copier):
        self.copier, self.db = copier, copier.db

    def copy(self, entity: str, ids: list[int]) -> dict[int, object]:
        if not ids:
            return {}
        e = entities.get(entity)
        found = e.load_dynamodb(self.copier.dynamo, self.copier.ddb, ids) if e.write_page_to_mysql else {}
        if e.write_page_to_mysql is None or len(found) < len(ids):  # gone meanwhile: the one-at-a-time copy says so
            return self.one_by_one(entity, ids)
        decided = {}
        try:
            with self.db.cursor(write=True) as cur:
                e.write_page_to_mysql(self, cur, found, decided)
        except Exception:  # noqa: BLE001 - a parent copied meanwhile, a unique key: one at a time
            return self.one_by_one(entity, ids)
        return {i: decided.get(i, "copied") for i in ids}

    def one_by_one(self, entity, ids):
        return dict(zip(ids, pool_retrying(lambda i: self.copier.copy(TO_MYSQL, entity, i), ids)))

    def parents(self, entity: str, ids) -> None:
        for i in sorted(set(ids) - mysql_existing(self.db, entity, ids)):
            self.copier.copy_parent(entity, i)

    @staticmethod
    def collide(found, decided, rows, owner: str, what: str):
        """Entities whose id MySQL gives to another owner: decided as collisions, left out."""
        mine = {r["id"]: r[owner + "_id"] for r in rows}
        keep = {}
        for i, v in found.items():
            collision = owner_collision(what, i, owner, mine.get(i), getattr(v, owner + "_id"))
            if collision:
                decided[i] = collision
            else:
                keep[i] = v
        return keep
