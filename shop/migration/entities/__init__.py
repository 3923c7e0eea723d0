"""The migrated entities, one module each, and the one registry everything walks: routing's
pending checks, the journal, stats, the id counters, backfill, verify, repair, the reverse copy,
the CLI and the test and benchmark set-up. An entity this package does not declare is an error
(UnknownEntity), never a fall-through.

Parents come before children: a copy in REGISTRY's order never writes a row before the rows it
references. docs/development.md walks through adding an entity.
"""
from __future__ import annotations

from .base import Entity, UnknownEntity
from .carts import CARTS
from .categories import CATEGORIES
from .orders import ORDERS
from .products import PRODUCTS
from .users import USERS

REGISTRY: tuple[Entity, ...] = (USERS, CATEGORIES, PRODUCTS, CARTS, ORDERS)
NAMES = tuple(e.name for e in REGISTRY)
_BY_NAME = {e.name: e for e in REGISTRY}
_BY_REPOSITORY = {e.repository: e for e in REGISTRY}
DYNAMODB_TABLES = tuple(dict.fromkeys(e.ddb_table for e in REGISTRY))  # the tables entities live in


def ddb_projection(table: str) -> tuple[str, dict]:
    """What a scan of a DynamoDB table reads to find which entities it holds: the kind and
    each kind's id attribute (ProjectionExpression and its ExpressionAttributeNames)."""
    names = ["PK", "SK", "entity"] + sorted({e.ddb_id for e in REGISTRY if e.ddb_table == table})
    return ", ".join(f"#p{i}" for i in range(len(names))), {f"#p{i}": n for i, n in enumerate(names)}


def parse_names(given) -> list[str]:
    """Entity names as an operator types them: `user product`, `user,product` or `all`
    (unknown names are kept: the caller says which are unknown)."""
    names = [n.lower() for g in given for n in g.replace(",", " ").split()]
    return list(NAMES) if names == ["all"] else names


def get(name: str) -> Entity:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownEntity(f"no migrated entity is called {name!r}: known are {', '.join(NAMES)}") from None


def for_repository(repository: str) -> Entity | None:
    """The entity a repository class's reads and writes concern (None: none the migration knows)."""
    return _BY_REPOSITORY.get(repository)


def order_key(target: tuple[str, object]) -> tuple[int, int]:
    """Sort (entity, id) pairs parents first, then by id."""
    get(target[0])
    return NAMES.index(target[0]), int(target[1])


__all__ = ["CARTS", "CATEGORIES", "DYNAMODB_TABLES", "Entity", "NAMES", "ORDERS", "PRODUCTS", "REGISTRY",
           "USERS", "UnknownEntity", "ddb_projection", "for_repository", "get", "order_key"]
