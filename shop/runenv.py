"""The settings `make run` serves with, saved for the commands run beside the server.

`make run` writes them (`python -m shop.runenv save`) into `.run/settings.env` of this
checkout, ignored by git and readable by its owner only (it holds the key); `scripts/flask.sh`
and `make flask` read it, so `phase status` or `phase set` reach the database and tables the
server uses, not the defaults. Precedence, highest first: a variable set in the command's own
environment, then this file, then flask.sh's development defaults, then the app's defaults.
The values written are the effective ones (Settings.from_env), defaults included, so a
default changed later cannot make the two disagree.
"""
from __future__ import annotations

import os
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from .config import Settings

PATH = Path(".run") / "settings.env"
# What decides which data a command reads and how the migration's gates judge it.
FIELDS = {
    "MYSQL_HOST": "mysql_host", "MYSQL_PORT": "mysql_port", "MYSQL_USER": "mysql_user",
    "MYSQL_PASSWORD": "mysql_password", "MYSQL_DATABASE": "mysql_database",
    "DYNAMODB_ENDPOINT": "dynamodb_endpoint", "DYNAMODB_TABLE_PREFIX": "dynamodb_table_prefix",
    "AWS_REGION": "aws_region", "SECRET_KEY": "secret_key", "SECRET_KEY_FALLBACKS": "secret_key_fallbacks",
    "SHOP_ENV": "shop_env", "SHOP_FLAGS": "shop_flags", "SHOP_FLAGS_PINNED": "shop_flags_pinned",
    "SHOP_PHASE_REFRESH_MS": "phase_refresh_ms", "SHOP_GATE_COMPARE_WINDOW_S": "gate_compare_window_s",
    "SHOP_ID_GAP": "id_gap", "SHOP_DUAL_WRITE_TIMEOUT_MS": "dual_write_timeout_ms",
    "SHOP_COMPARE_PERCENT": "compare_percent", "SHOP_COMPARE_MODE": "compare_mode",
    "SHOP_GATE_MIN_COMPARISONS": "gate_min_comparisons", "SHOP_LIMIT_MISMATCH_RATE": "limit_mismatch_rate",
    "SHOP_LIMIT_ERROR_RATE": "limit_error_rate", "SHOP_LIMIT_LATENCY_RATIO": "limit_latency_ratio",
    "SHOP_LIMIT_LATENCY_FLOOR_MS": "limit_latency_floor_ms", "SHOP_GUARD_MIN_SAMPLES": "guard_min_samples",
    "SHOP_OPERATORS_FILE": "operators_file",  # `operator add` must edit the file the server reads
}


def _text(value) -> str:
    if value is None:
        return ""  # DYNAMODB_ENDPOINT empty: AWS's endpoint
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def render(settings: Settings, url: str = "") -> str:
    lines = [f"# Written by `make run` at {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
             + (f" for the server on {url}" if url else "") + ".",
             "# Read by scripts/flask.sh and `make flask`; a variable set in their environment wins."]
    lines += [f"{name}={shlex.quote(_text(getattr(settings, field)))}" for name, field in FIELDS.items()]
    return "\n".join(lines) + "\n"


def save(path: Path, settings: Settings, url: str = "") -> None:
    """Atomically, mode 600: the file holds SECRET_KEY and MySQL's password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render(settings, url))
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] != "save":
        print("usage: python -m shop.runenv save [PATH] [URL]", file=sys.stderr)
        return 2
    path = Path(argv[1]) if len(argv) > 1 else PATH
    save(path, Settings.from_env(), argv[2] if len(argv) > 2 else "")
    print(f"settings of this server saved in {path} (scripts/flask.sh and `make flask` use them)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
