"""The one registry of migrated entities (shop/migration/entities/) and every list that remains
beside it agree: the repositories, the routing table, the DynamoDB tables, the MySQL schema, the
id counters. An entity nobody declared is an error, never a fall-through."""
from __future__ import annotations

import inspect

import pytest

from shop.aspects.table import _REFERENCES, ROUTES, WRITE
from shop.db import schema_tables
from shop.migration import entities
from shop.migration.copies import Copier
from shop.migration.entities.base import Entity
from shop.repositories import CLASSES, Repositories
from shop.repositories.dynamodb.tables import SPEC

HOOKS = ("read", "load_mysql", "load_dynamodb", "to_dynamodb", "to_mysql")


def test_every_entity_declares_every_hook_the_machinery_calls():
    for e in entities.REGISTRY:
        for hook in HOOKS:
            assert getattr(type(e), hook) is not getattr(Entity, hook), (e, hook)
        assert e.write_page_to_mysql is None or callable(e.write_page_to_mysql)


def test_the_repositories_and_the_routing_table_name_the_registrys_entities():
    assert {e.repos_attr: e.repository for e in entities.REGISTRY} == CLASSES
    assert [f for f, _ in Repositories(*range(len(CLASSES)))] == list(CLASSES)
    assert {r.repository for r in ROUTES} == {e.repository for e in entities.REGISTRY}
    assert {entity for _, entity in _REFERENCES} <= set(entities.NAMES)
    for e in entities.REGISTRY:
        assert entities.for_repository(e.repository) is e and entities.get(e.name) is e
        assert any(r.repository == e.repository and e.key in inspect.signature(_method(r)).parameters
                   for r in ROUTES), f"no routed method of {e.repository} takes {e.key}"


def test_every_id_a_routed_write_takes_names_its_entity_for_the_behind_routing():
    """While MySQL is behind (after phase 5), a write touching an entity MySQL lacks goes to
    DynamoDB first; it knows what a write touches by its id parameters (_REFERENCES). A new
    entity's id parameter missing there would send its writes to a stale MySQL row, silently."""
    named = {name for name, _ in _REFERENCES}
    for route in ROUTES:
        if route.kind == WRITE:
            ids = {p for p in inspect.signature(_method(route)).parameters if p.endswith("_id")}
            assert ids <= named, f"{route.name} takes {sorted(ids - named)}: add it to _REFERENCES (shop/aspects/table.py)"


def _method(route):
    from shop.repositories import mysql
    return getattr(getattr(mysql, route.repository), route.method)


def test_the_stores_hold_what_the_registry_says():
    tables = schema_tables()
    for e in entities.REGISTRY:
        assert e.mysql_table in tables and e.ddb_table in SPEC, e
        assert all(table in tables for _, table in e.counters), e
    assert set(entities.DYNAMODB_TABLES) <= set(SPEC)


def test_parents_come_before_their_children():
    for i, e in enumerate(entities.REGISTRY):
        assert all(p in entities.NAMES[:i + 1] for p in e.parents), (e, e.parents)
    assert sorted([("order", 1), ("user", 9), ("cart", 2)], key=entities.order_key) == [
        ("user", 9), ("cart", 2), ("order", 1)]


def test_an_entity_nobody_declared_is_an_error(db, dynamo):
    with pytest.raises(entities.UnknownEntity, match="known are user, category, product, cart, order"):
        entities.get("no-such-entity")
    copier = Copier.of(db, dynamo)
    for call in (lambda: copier.copy("to_dynamodb", "no-such-entity", 1),
                 lambda: copier.compare("no-such-entity", 1), lambda: entities.order_key(("no-such-entity", 1))):
        with pytest.raises(entities.UnknownEntity):
            call()
    with pytest.raises(ValueError, match="no direction"):
        copier.copy("to_elsewhere", "user", 1)
