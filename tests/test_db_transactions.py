"""A write transaction is one MySQL session from its first statement to its commit.

DBUtils' pooled connections re-run a statement that failed on a lost connection on a new
session unless they know a transaction is open: the statements before it were rolled back with
the old session, the ones after it committed on the new one. `make journey` ended once with an
order in DynamoDB that MySQL had lost that way (a checkout's statement timed out mid-transaction,
the rest committed, the router mirrored the result). A write transaction is begun explicitly,
so a lost session fails the whole call.
"""
from __future__ import annotations

import pymysql
import pytest

from shop.errors import StoreUnavailableError


def test_a_session_lost_mid_transaction_fails_the_whole_write_and_commits_none_of_it(db):
    with db.cursor(write=True) as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS test_tx_split (n INT PRIMARY KEY)")
        cur.execute("DELETE FROM test_tx_split")
    admin = pymysql.connect(**{**db.connect_kwargs(), "autocommit": True})
    try:
        with pytest.raises(StoreUnavailableError):
            with db.cursor(write=True) as cur:
                cur.execute("INSERT INTO test_tx_split VALUES (1)")
                cur.execute("SELECT CONNECTION_ID() AS id")
                session = cur.fetchone()["id"]
                with admin.cursor() as kill:
                    kill.execute(f"KILL CONNECTION {int(session)}")
                cur.execute("INSERT INTO test_tx_split VALUES (2)")
        with admin.cursor() as check:
            check.execute("SELECT n FROM test_tx_split ORDER BY n")
            assert check.fetchall() == ()  # neither the first statement nor the one after the loss
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS test_tx_split")
        admin.close()


def test_reads_still_reconnect_after_a_lost_session(db):
    """A read has nothing to lose: the pool may still run it again on a new session."""
    admin = pymysql.connect(**{**db.connect_kwargs(), "autocommit": True})
    try:
        with db.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID() AS id")
            session = cur.fetchone()["id"]
        with admin.cursor() as kill:
            kill.execute(f"KILL CONNECTION {int(session)}")
        with db.cursor() as cur:
            cur.execute("SELECT 1 AS one")
            assert cur.fetchone()["one"] == 1
    finally:
        admin.close()
