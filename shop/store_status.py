"""Which stores this process reads, and what they hold: the first lines of `phase status`.

An operator reading the wrong store (another MYSQL_DATABASE or DYNAMODB_TABLE_PREFIX than the
server's) must not be shown a plausible, empty status: each surprise is a warning."""
from __future__ import annotations

from .prepare import MYSQL_TABLES
from .repositories.dynamodb.errors import error_code
from .repositories.dynamodb.tables import SPEC

COUNTED = ("users", "products", "orders")  # MySQL tables whose rows say "something is stored"


def describe(state) -> dict:
    """Which MySQL database and DynamoDB tables this process reads, whether their schema is
    there and whether anything is stored in them, with the warnings."""
    s, dynamo = state.settings, state.dynamo
    warnings: list[str] = []
    mysql = _mysql(state, warnings)
    ddb = _dynamodb(state, warnings)
    stored_mysql = any(mysql.get("rows", {}).values())
    stored_ddb = any(ddb["items"].values())
    if "error" not in mysql and not stored_mysql and not stored_ddb:
        warnings.append(f"NOTHING IS STORED in MySQL database {s.mysql_database} nor in DynamoDB tables "
                        f"{dynamo.prefix}-*: is this the store the server uses? (scripts/flask.sh and `make flask`"
                        " read the settings `make run` saved in .run/settings.env)")
    elif "error" not in mysql and not stored_mysql:
        warnings.append(f"MySQL database {s.mysql_database} holds no user, product or order; DynamoDB does")
    return {"mysql": mysql, "dynamodb": ddb, "warnings": warnings}


def _mysql(state, warnings: list) -> dict:
    s = state.settings
    mysql = {"address": f"{s.mysql_host}:{s.mysql_port}", "database": s.mysql_database, "user": s.mysql_user}
    try:
        with state.db.cursor() as cur:
            cur.execute("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()")
            present = {r["t"] for r in cur.fetchall()}
            mysql["missing_tables"] = [t for t in MYSQL_TABLES if t not in present]
            mysql["rows"] = {}
            for table in (t for t in COUNTED if t in present):
                cur.execute(f"SELECT COUNT(*) AS n FROM {table}")
                mysql["rows"][table] = int(cur.fetchone()["n"])
    except Exception as exc:  # noqa: BLE001 - said, not raised: the rest of the status may still show
        mysql["error"] = f"{type(exc).__name__}: {getattr(exc, 'cause', None) or exc}"[:300]
        warnings.append(f"cannot read MySQL database {s.mysql_database} at {mysql['address']}: {mysql['error']}")
        return mysql
    if mysql["missing_tables"]:
        warnings.append(f"MySQL database {s.mysql_database} lacks the tables {', '.join(mysql['missing_tables'])}:"
                        " is it the server's database? (`init-db` creates them)")
    return mysql


def _dynamodb(state, warnings: list) -> dict:
    s, dynamo = state.settings, state.dynamo
    ddb = {"endpoint": s.dynamodb_endpoint or "AWS (the region's endpoint)", "region": s.aws_region,
           "tables": [dynamo.table(name) for name in SPEC], "missing_tables": [], "items": {}}
    try:
        for name in SPEC:
            table = dynamo.table(name)
            if not _exists(dynamo, table):
                ddb["missing_tables"].append(table)
            elif name != "counters":
                ddb["items"][table] = bool(dynamo.call("scan", TableName=table, Limit=1).get("Items"))
    except Exception as exc:  # noqa: BLE001
        ddb["error"] = f"{type(exc).__name__}: {exc}"[:300]
        warnings.append(f"cannot read DynamoDB at {ddb['endpoint']}: {ddb['error']}")
    if ddb["missing_tables"]:
        warnings.append(f"DynamoDB at {ddb['endpoint']} has no table {', '.join(ddb['missing_tables'])}"
                        " (`ddb-create-tables` creates them; is DYNAMODB_TABLE_PREFIX the server's?)")
    return ddb


def _exists(dynamo, table: str) -> bool:
    try:
        dynamo.call("describe_table", TableName=table)
    except Exception as exc:  # noqa: BLE001
        if (getattr(exc, "code", None) or error_code(exc)) != "ResourceNotFoundException":
            raise
        return False
    return True
