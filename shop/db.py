"""MySQL connections: one DBUtils pool per process, opened on first use."""
from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
from contextlib import contextmanager
from importlib import resources

import pymysql
from dbutils.pooled_db import PooledDB
from opentelemetry import trace
from pymysql.cursors import DictCursor

from .config import Settings
from .errors import ConflictError, DuplicateError, NotFoundError, StoreBusyError, StoreUnavailableError

log = logging.getLogger("shop.db")

# Server-side failures a retry or an operator fixes, not the caller.
_UNAVAILABLE = (pymysql.err.OperationalError, pymysql.err.InterfaceError, pymysql.err.InternalError)
_DUP_KEY = re.compile(r"for key '(?:[^'.]+\.)?([^']+)'")


def error_code(exc: BaseException) -> int | None:
    """MySQL's error number behind an exception, translated or not (1205 lock wait, 1213 deadlock)."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, pymysql.err.MySQLError) and cause.args and isinstance(cause.args[0], int):
        return cause.args[0]
    return None


def translate(exc: BaseException) -> BaseException:
    """Turn a driver exception into the domain error a caller can act on."""
    if isinstance(exc, pymysql.err.IntegrityError):
        code = exc.args[0] if exc.args else None
        if code == 1062:
            m = _DUP_KEY.search(str(exc.args[1]) if len(exc.args) > 1 else "")
            key = m.group(1) if m else "unique"
            return DuplicateError(f"Duplicate value for {key}", field=key)
        if code == 1452:
            return NotFoundError("Referenced record does not exist")
        if code == 1451:
            return ConflictError("Record is still referenced by other records")
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailableError("MySQL is unavailable", store="mysql", cause=exc)
    return exc


DEADLOCK = 1213
DEADLOCK_ATTEMPTS = 3


def retry_deadlocks(method):
    """Run a write transaction again when InnoDB picked it as a deadlock's victim.

    InnoDB rolls the victim's whole transaction back (1213), so nothing of it was saved and
    running it again is safe: each decorated method is one transaction of its own. Deadlocks
    are normal under concurrency (a cart insert's foreign-key lock on a product against a
    checkout that holds the product and deletes cart rows); without this, the shopper got a
    503 claiming the database was down. A short random pause lets the winner commit first.
    """

    @functools.wraps(method)
    def retried(*args, **kwargs):
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                return method(*args, **kwargs)
            except StoreUnavailableError as exc:
                if error_code(exc) != DEADLOCK:
                    raise
                where = {"event": "mysql_deadlock", "operation": method.__qualname__, "attempt": attempt}
                trace.get_current_span().add_event("mysql.deadlock", where)
                if attempt == DEADLOCK_ATTEMPTS:
                    log.warning("deadlock victim again; giving up", extra=where)
                    raise StoreBusyError(
                        f"MySQL rolled this change back {attempt} times to break deadlocks; nothing was saved",
                        store="mysql", cause=exc.cause) from exc
                log.info("deadlock victim; running the transaction again", extra=where)
                time.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")

    return retried


class Database:
    """A lazily created connection pool and transaction helpers."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._pool: PooledDB | None = None
        self._lock = threading.Lock()

    def connect_kwargs(self, database: bool = True) -> dict:
        s = self.settings
        kwargs = dict(
            host=s.mysql_host,
            port=s.mysql_port,
            user=s.mysql_user,
            password=s.mysql_password,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=s.mysql_connect_timeout,
            read_timeout=30,
            write_timeout=30,
            # Naive datetimes from TIMESTAMP columns are then UTC.
            init_command="SET time_zone = '+00:00'",
        )
        if database:
            kwargs["database"] = s.mysql_database
        return kwargs

    @property
    def pool(self) -> PooledDB:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = PooledDB(
                        creator=pymysql,
                        maxconnections=self.settings.mysql_pool_size,
                        blocking=True,
                        ping=1,
                        **self.connect_kwargs(),
                    )
        return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    @contextmanager
    def cursor(self, *, write: bool = False):
        """A dict cursor in one transaction: committed on success when `write`, else rolled back."""
        try:
            conn = self.pool.connection()
        except Exception as exc:  # the pool raises the driver's error on connect
            raise translate(exc) from exc
        try:
            if write:
                # Tell the pool a transaction is open: it then raises when the session is lost
                # mid-transaction instead of running the statement again on a new session, which
                # would commit the statements after the loss without those before it.
                conn.begin()
            cur = conn.cursor(DictCursor)
            try:
                yield cur
                if write:
                    conn.commit()
                else:
                    conn.rollback()
            except BaseException:
                try:
                    conn.rollback()
                except Exception:
                    pass
                raise
            finally:
                cur.close()
        except Exception as exc:
            translated = translate(exc)
            if translated is exc:
                raise
            raise translated from exc
        finally:
            conn.close()

    def ping(self) -> bool:
        try:
            with self.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() is not None
        except StoreUnavailableError:
            return False

    def create_schema(self) -> None:
        """Every MySQL table, the application's and the migration's (shop/schema.sql), and the
        columns added since a database was made (UPGRADES). Idempotent."""
        sql = resources.files("shop").joinpath("schema.sql").read_text()
        with self.cursor(write=True) as cur:
            for statement in _statements(sql):
                cur.execute(statement)
            upgrade(cur)


# Columns added since the first schema: a database made before them gains them at init-db
# (portable: MySQL has no ADD COLUMN IF NOT EXISTS).
UPGRADES = (
    ("users", "version", "BIGINT NOT NULL DEFAULT 1"),
    ("categories", "version", "BIGINT NOT NULL DEFAULT 1"),
    ("categories", "name_key", "CHAR(64) NULL"),
    ("categories", "owner_id", "INT NULL"),
    ("products", "version", "BIGINT NOT NULL DEFAULT 1"),
    ("products", "name_fold", "TEXT NULL"),
    ("products", "description_fold", "TEXT NULL"),
    ("shopping_carts", "version", "BIGINT NOT NULL DEFAULT 1"),
    ("orders", "version", "BIGINT NOT NULL DEFAULT 1"),
    ("migration_repairs", "deleted", "BOOLEAN NOT NULL DEFAULT FALSE"),
)


def upgrade(cur) -> None:
    """Add what UPGRADES lists and is missing, then fold the text of rows written before."""
    cur.execute("SELECT table_name AS t, column_name AS c FROM information_schema.columns"
                " WHERE table_schema = DATABASE()")
    present = {(r["t"], r["c"]) for r in cur.fetchall()}
    for table, column, ddl in UPGRADES:
        if (table, column) not in present:
            cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
    _fold_rows(cur)
    cur.execute("SELECT COUNT(*) AS n FROM information_schema.statistics WHERE table_schema = DATABASE()"
                " AND table_name = 'categories' AND index_name = 'category_name'")
    if not cur.fetchone()["n"]:
        cur.execute("ALTER TABLE categories ADD UNIQUE KEY category_name (name_key)")


def _fold_rows(cur) -> None:
    from .text import fold, fold_key

    cur.execute("SELECT id, name, description FROM products WHERE name_fold IS NULL")
    rows = cur.fetchall()
    if rows:
        # updated_at set to itself: ON UPDATE CURRENT_TIMESTAMP would move it, and it is data.
        cur.executemany("UPDATE products SET name_fold = %s, description_fold = %s, updated_at = updated_at"
                        " WHERE id = %s",
                        [(fold(r["name"]), fold(r["description"] or ""), r["id"]) for r in rows])
    cur.execute("SELECT name_key FROM categories WHERE name_key IS NOT NULL")
    taken, keys = {r["name_key"] for r in cur.fetchall()}, []
    cur.execute("SELECT id, name FROM categories WHERE name_key IS NULL ORDER BY id")
    for r in cur.fetchall():
        key = fold_key(r["name"])
        if key in taken:  # two names that fold alike, from before names were unique this way
            log.warning("category name not unique once folded: left without a key",
                        extra={"event": "schema", "entity": "category", "entity_id": str(r["id"])})
            continue
        taken.add(key)
        keys.append((key, r["id"]))
    if keys:
        cur.executemany("UPDATE categories SET name_key = %s WHERE id = %s", keys)


def schema_tables() -> tuple[str, ...]:
    """The MySQL tables shop/schema.sql creates, in its order (children after parents)."""
    sql = resources.files("shop").joinpath("schema.sql").read_text()
    return tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", sql))


def _statements(sql: str):
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    for stmt in "\n".join(lines).split(";"):
        if stmt.strip():
            yield stmt
