"""GET /api/health: are the stores that the flags in force need reachable?

It names the stores and whether they answer, and the server phase this worker routes by with
the age of its view; nothing about the process (no pid, uptime,
memory or environment: they help an attacker, not a load balancer). A DynamoDB-only server
is healthy with MySQL retired, and a MySQL-only one before DynamoDB exists.
"""
from __future__ import annotations

import time

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
               "stores": {name: {"connected": up} for name, up in stores.items()}, "phase": phase(state.runtime)})


def phase(runtime) -> dict:
    """The server phase this worker routes by, and how old its view is: it re-reads the phase
    document every SHOP_PHASE_REFRESH_MS; `stale` when it could not for two periods (the stores
    holding it unreadable), so it routes by the last phase it knew."""
    flags, view = runtime.server_flags(), runtime.phase  # server_flags() re-reads the view if due
    preset = flags.preset
    out = {"phase": preset.number if preset else None, "label": str(preset.number) if preset else f"custom ({flags})",
           "flags": str(flags)}
    if runtime.pinned or view is None:
        return {**out, "source": "SHOP_FLAGS_PINNED" if runtime.pinned else "SHOP_FLAGS"}
    age = round(time.time() - view.read_at, 3) if view.read_at else None
    return {**out, "source": view.current().source, "age_seconds": age,
            "stale": age is None or age > 2 * view.refresh_s}
