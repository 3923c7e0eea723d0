"""Preparing both stores: MySQL schema and repair log, DynamoDB tables.

`empty=True` removes every row first: for the test, benchmark and reliability databases
only, which is why the application itself never passes it.
"""
from __future__ import annotations

MYSQL_TABLES = ("order_items", "orders", "shopping_carts", "products", "categories", "users", "migration_repairs")


def prepare(app, *, empty: bool = False) -> None:
    from .repositories.dynamodb.tables import create_tables

    state = app.extensions["shop"]
    state.db.create_schema()
    state.runtime.repair_log.ensure_table()
    if empty:
        with state.db.cursor(write=True) as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in MYSQL_TABLES:
                cur.execute(f"TRUNCATE TABLE {table}")
            cur.execute("SET FOREIGN_KEY_CHECKS = 1")
    create_tables(state.dynamo)
