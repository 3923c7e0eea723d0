"""GET /api/health: are the stores that the flags in force need reachable?

It names the stores and whether they answer, nothing about the process (no pid, uptime,
memory or environment: they help an attacker, not a load balancer). A DynamoDB-only server
is healthy with MySQL retired, and a MySQL-only one before DynamoDB exists.
"""
from __future__ import annotations

from flask import current_app

from .common import fail, ok

LABELS = {"mysql": "MySQL", "dynamodb": "DynamoDB"}


def needed_stores(flags) -> list[str]:
    return (["mysql"] if flags.read_mysql or flags.write_mysql else []) + (
        ["dynamodb"] if flags.read_ddb or flags.write_ddb else [])


def _dynamodb_up(dynamo) -> bool:
    try:
        dynamo.call("describe_table", TableName=dynamo.table("orders"))
        return True
    except Exception:  # unreachable, or the tables are missing: not serving
        return False


def health():
    state = current_app.extensions["shop"]
    checks = {"mysql": state.db.ping, "dynamodb": lambda: _dynamodb_up(state.dynamo)}
    stores = {name: checks[name]() for name in needed_stores(state.runtime.flags())}
    down = [LABELS[name] for name, up in stores.items() if not up]
    if down:
        return fail(503, "SERVICE_UNAVAILABLE", "Health check failed",
                    " and ".join(down) + " connection failed")
    return ok({"status": "OK", "database": {"connected": True},
               "stores": {name: {"connected": up} for name, up in stores.items()}})
