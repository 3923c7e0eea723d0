"""Preparing both stores: MySQL schema and repair log, DynamoDB tables.

`empty=True` removes every row first: for the test, benchmark and reliability databases
only, which is why the application itself never passes it.
"""
from __future__ import annotations

from .db import schema_tables

MYSQL_TABLES = schema_tables()  # shop/schema.sql: the one home of MySQL's schema


def prepare(app, *, empty: bool = False) -> None:
    from .repositories.dynamodb.tables import create_tables

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


def describe(state) -> dict:
    """Which MySQL database and DynamoDB tables this process reads, whether their schema is
    there and whether anything is stored in them, with a warning for each surprise: an operator
    reading the wrong store (another MYSQL_DATABASE or DYNAMODB_TABLE_PREFIX than the server's)
    must not be shown a plausible, empty status."""
    from .repositories.dynamodb.errors import error_code
    from .repositories.dynamodb.tables import SPEC

    s, dynamo = state.settings, state.dynamo
    mysql = {"address": f"{s.mysql_host}:{s.mysql_port}", "database": s.mysql_database, "user": s.mysql_user}
    ddb = {"endpoint": s.dynamodb_endpoint or "AWS (the region's endpoint)", "region": s.aws_region,
           "tables": [dynamo.table(name) for name in SPEC]}
    warnings = []
    try:
        with state.db.cursor() as cur:
            cur.execute("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()")
            present = {r["t"] for r in cur.fetchall()}
            mysql["missing_tables"] = [t for t in MYSQL_TABLES if t not in present]
            mysql["rows"] = {}
            for table in ("users", "products", "orders"):
                if table in present:
                    cur.execute(f"SELECT COUNT(*) AS n FROM {table}")
                    mysql["rows"][table] = int(cur.fetchone()["n"])
    except Exception as exc:  # noqa: BLE001 - said, not raised: the rest of the status may still show
        mysql["error"] = f"{type(exc).__name__}: {getattr(exc, 'cause', None) or exc}"[:300]
        warnings.append(f"cannot read MySQL database {s.mysql_database} at {mysql['address']}: {mysql['error']}")
    else:
        if mysql["missing_tables"]:
            warnings.append(f"MySQL database {s.mysql_database} lacks the tables {', '.join(mysql['missing_tables'])}:"
                            " is it the server's database? (`init-db` creates them)")
    ddb["missing_tables"], ddb["items"] = [], {}
    try:
        for name in SPEC:
            table = dynamo.table(name)
            try:
                dynamo.call("describe_table", TableName=table)
            except Exception as exc:  # noqa: BLE001
                if (getattr(exc, "code", None) or error_code(exc)) != "ResourceNotFoundException":
                    raise
                ddb["missing_tables"].append(table)
                continue
            if name != "counters":
                ddb["items"][table] = bool(dynamo.call("scan", TableName=table, Limit=1).get("Items"))
    except Exception as exc:  # noqa: BLE001
        ddb["error"] = f"{type(exc).__name__}: {exc}"[:300]
        warnings.append(f"cannot read DynamoDB at {ddb['endpoint']}: {ddb['error']}")
    if ddb["missing_tables"]:
        warnings.append(f"DynamoDB at {ddb['endpoint']} has no table {', '.join(ddb['missing_tables'])}"
                        " (`ddb-create-tables` creates them; is DYNAMODB_TABLE_PREFIX the server's?)")
    stored_mysql = any(mysql.get("rows", {}).values())
    stored_ddb = any(ddb["items"].values())
    if "error" not in mysql and not stored_mysql and not stored_ddb:
        warnings.append(f"NOTHING IS STORED in MySQL database {s.mysql_database} nor in DynamoDB tables "
                        f"{dynamo.prefix}-*: is this the store the server uses? (scripts/flask.sh and `make flask`"
                        " read the settings `make run` saved in .run/settings.env)")
    elif "error" not in mysql and not stored_mysql:
        warnings.append(f"MySQL database {s.mysql_database} holds no user, product or order; DynamoDB does")
    return {"mysql": mysql, "dynamodb": ddb, "warnings": warnings}
