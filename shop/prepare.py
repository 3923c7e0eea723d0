"""Preparing both stores for a test, benchmark or reliability run: MySQL's schema, DynamoDB's
tables, and with `empty=True` every row removed first (for those databases only, which is why
the application itself never calls it: `flask init-db` and `ddb-create-tables` do its part)."""
from __future__ import annotations

from .db import schema_tables
from .repositories.dynamodb.tables import SPEC, create_tables, key_names

MYSQL_TABLES = schema_tables()  # shop/schema.sql: the one home of MySQL's schema


def prepare(app, *, empty: bool = False, keep_counters: bool = True) -> None:
    """With `keep_counters=False` (a test that starts a whole dataset again, ids included) the
    id counters and the phase document go too."""
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
        _empty_dynamodb(state.dynamo, keep_counters)
    state.runtime.phase.refresh()


def _empty_dynamodb(dynamo, keep_counters: bool) -> None:
    """Every item, but (by default) the id counters: MySQL's ids start again at 1, and a
    DynamoDB-only create must still never take an id DynamoDB gave before (a copy of it may
    live on). The counters table also holds the phase document, its audit and the journal
    towards MySQL."""
    for name in SPEC:
        table, keys = dynamo.table(name), key_names(name)
        items = dynamo.scan_all(TableName=table, ProjectionExpression=", ".join(keys))
        dynamo.batch_delete(table, [{k: i[k] for k in keys} for i in items
                                    if not (keep_counters and i["PK"].startswith("COUNTER#"))])
