"""What every entity's copy uses (shop/migration/entities/): the outcomes a copy reports, id
collisions, the MySQL upserts that keep the newer row, the plan of a page's writes, and the
threads that send them.

Copies replay state, not operations: copying twice, or copying an entity that was never
broken, leaves the target equal to the source. Only a recorded deletion deletes: an entity the
source lacks is otherwise left alone in the target and reported ("left").
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..aspects.compare import diff, own

COPIED, DELETED, LEFT, ABSENT = "copied", "deleted", "left", "absent"
THREADS = 8  # per-entity work (carts, fallbacks) in flight at once


class IdCollision(RuntimeError):
    """The target holds a different record under the same id: nothing is overwritten."""


def owner_collision(what: str, entity_id, owner: str, mysql_owner, ddb_owner) -> IdCollision | None:
    """The collision when the two stores give one id to different owners (a product's seller,
    an order's user), else None (no MySQL row, or the same owner)."""
    if mysql_owner is None or ddb_owner is None or int(mysql_owner) == int(ddb_owner):
        return None
    return IdCollision(f"{what} {entity_id} belongs to {owner} {mysql_owner} in MySQL and to {owner} {ddb_owner}"
                       " in DynamoDB")


def differences(source, current) -> list:
    """A record's own attributes compared (the products a cart or an order joins in are
    compared as products of their own): what verify and the copies decide by."""
    return diff(own(source), own(current), frozenset({"items"}))


def newer_wins(columns) -> str:
    """ON DUPLICATE KEY UPDATE assignments that take the copied row only where its version is
    at least the row's: a copy back never overwrites a newer MySQL row (the order both stores
    keep). `version` comes last: MySQL's later assignments read the values set before them."""
    take = "VALUES(version) >= version"
    return ", ".join([f"{c} = IF({take}, VALUES({c}), {c})" for c in columns]
                     + ["version = GREATEST(version, VALUES(version))"])


def marks(ids) -> str:
    """The placeholders of an IN (...) list."""
    return ", ".join(["%s"] * len(ids))


class Plan:
    """A page's writes, decided: the ids found equal, outcomes known before writing
    (collisions, items too large), and the write requests still to send, each a callable
    returning {id: outcome}."""

    def __init__(self, decided: dict | None = None, jobs: list | None = None, unchanged=(), then=()):
        self.decided, self.jobs, self.unchanged = decided or {}, jobs or [], list(unchanged)
        self.then = [list(stage) for stage in then]  # stages of jobs, each sent once the one before is


def pool_map(fn, items) -> list:
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(THREADS, len(items)), thread_name_prefix="sync") as pool:
        return list(pool.map(fn, items))


def pool_retrying(fn, items) -> list:
    """`fn` over items on threads, each exception caught; what failed other than by an id
    collision (typically a parent another thread or segment was copying at the same moment)
    is tried once more, alone, before its exception is returned."""
    def safe(item):
        try:
            return fn(item)
        except Exception as exc:  # noqa: BLE001 - reported per entity by the run
            return exc
    out = pool_map(safe, items)
    return [safe(item) if isinstance(o, Exception) and not isinstance(o, IdCollision) else o
            for item, o in zip(items, out)]
