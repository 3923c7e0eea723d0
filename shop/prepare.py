"""Preparing both stores for a test, benchmark or reliability run: MySQL's schema, DynamoDB's
tables, and with `empty=True` every row removed first (for those databases only, which is why
the application itself never calls it: `flask init-db` and `ddb-create-tables` do its part)."""
from __future__ import annotations

from .db import schema_tables
from .repositories.dynamodb.tables import create_tables

MYSQL_TABLES = schema_tables()  # shop/schema.sql: the one home of MySQL's schema


def prepare(app, *, empty: bool = False) -> None:
    state = app.extensions["shop"]
    state.db.create_schema()
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
