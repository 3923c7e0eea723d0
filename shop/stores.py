"""Preparing both stores: MySQL schema and repair log, DynamoDB tables.

`empty=True` removes every row first: for the test, benchmark and reliability databases
only, which is why the application itself never passes it.
"""
from __future__ import annotations

MYSQL_TABLES = ("order_items", "orders", "shopping_carts", "products", "categories", "users", "migration_repairs",
                "migration_state", "migration_audit", "migration_mismatches")


def prepare(app, *, empty: bool = False) -> None:
    from .repositories.dynamodb.tables import create_tables

    state = app.extensions["shop"]
    state.db.create_schema()
    state.runtime.repair_log.ensure_table()
    state.runtime.phase.store.ensure_tables()
    if empty:
        with state.db.cursor(write=True) as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in MYSQL_TABLES:
                cur.execute(f"TRUNCATE TABLE {table}")
            cur.execute("SET FOREIGN_KEY_CHECKS = 1")
    create_tables(state.dynamo)
    if empty:
        _empty_migration_items(state.dynamo)
    state.runtime.phase.refresh()


def _empty_migration_items(dynamo) -> None:
    """The counters table also holds the phase document, its audit and the journal towards MySQL."""
    table = dynamo.table("counters")
    items = list(dynamo.scan_all(TableName=table, ProjectionExpression="PK"))
    dynamo.batch_delete(table, [{"PK": i["PK"]} for i in items if not i["PK"].startswith("COUNTER#")])
