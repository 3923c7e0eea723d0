"""Operator accounts: a name and a secret of its own for everyone who may use the flag page and
/metrics, so the audit trail says who acted.

They live in a file (SHOP_OPERATORS_FILE), one `name:bcrypt-hash` line each, not in a database:
the flag page is what an operator uses when a store misbehaves, so it must let them in whichever
store is down, and in phase 5 with MySQL retired. Every worker re-reads the file when it changes
(`scripts/flask.sh operator add|rotate|remove`), so a removed operator is out within one request.
"""
from __future__ import annotations

import fcntl
import hmac
import logging
import os
import re
import tempfile
import threading

import bcrypt

log = logging.getLogger("shop.operators")

NAME_RE = re.compile(r"[a-z][a-z0-9._-]{0,31}")
# The deprecated SHOP_FLAGS_PAGE_PASSWORD is this one account: the name cannot be typed in.
LEGACY_NAME = "operator"
MIN_LENGTH = 16
MIN_DISTINCT = 8
MAX_BYTES = 72  # bcrypt reads no further
# Published in this repository (compose, docs, demo data): anyone would try them first.
PUBLISHED = frozenset({"change-me-operator-password", "password123!", "dev-only-secret-change-me-in-production",
                       "change-me-to-a-long-random-string-please"})


def weak_secret(secret: str, name: str) -> str | None:
    """Why `secret` cannot be account `name`'s, or None when it is strong enough."""
    if secret.lower() in PUBLISHED:
        return "is a published example value"
    if len(secret) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    if len(set(secret)) < MIN_DISTINCT:
        return f"has fewer than {MIN_DISTINCT} different characters"
    if len(name) >= 3 and name.lower() in secret.lower():
        return "contains the account's name"
    if len(secret.encode()) > MAX_BYTES:
        return f"is longer than {MAX_BYTES} bytes (bcrypt would ignore the rest)"
    return None


def hash_secret(secret: str, rounds: int) -> str:
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds)).decode()


def parse(text: str) -> dict[str, str]:
    """The accounts of a file's text; ValueError naming the first bad line."""
    accounts: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, hashed = line.partition(":")
        if not NAME_RE.fullmatch(name) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ValueError(f"line {number} is not `name:bcrypt-hash` (names: a-z, 0-9, . _ -; 32 at most)")
        if name in accounts:
            raise ValueError(f"line {number}: {name} is there twice")
        accounts[name] = hashed
    return accounts


def read(path: str) -> dict[str, str]:
    """The file's accounts; none while it does not exist yet (before the first `operator add`)."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse(f.read())
    except FileNotFoundError:
        return {}


class Editing:
    """`with Editing(path) as accounts:` change the dict; it is written back when the block ends
    without an error. Edits wait for each other (a lock on the folder) and the file is replaced
    whole (a server never reads half of it), readable by its owner only."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self.folder = os.path.dirname(self.path)

    def __enter__(self) -> dict[str, str]:
        self._lock = os.open(self.folder, os.O_RDONLY)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.accounts = read(self.path)
        return self.accounts

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                lines = ["# Operator accounts (flask --app shop operator add|rotate|remove); name:bcrypt-hash"]
                lines += [f"{name}:{hashed}" for name, hashed in sorted(self.accounts.items())]
                fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".operators.")
                with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: mode 0600
                    f.write("\n".join(lines) + "\n")
                os.replace(temporary, self.path)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)


class Operators:
    """The accounts a server checks credentials against: the file's, and the deprecated shared
    password as the account `operator` while no line of the file takes that name."""

    def __init__(self, path: str | None, legacy_password: str | None, rounds: int):
        self.path = path
        self.legacy_password = legacy_password
        self._rounds = rounds
        self._seen: tuple | None = None
        self._accounts: dict[str, str] = {}
        self._lock = threading.Lock()
        if legacy_password:
            log.warning("SHOP_FLAGS_PAGE_PASSWORD is deprecated: it is one account, named 'operator', shared by"
                        " whoever knows it; give each operator an account of their own (SHOP_OPERATORS_FILE,"
                        " `scripts/flask.sh operator add NAME`), then unset it")

    @property
    def configured(self) -> bool:
        return bool(self.path or self.legacy_password)

    def accounts(self) -> dict[str, str]:
        """The file as it is now: re-read when it changed (a stat per operator request)."""
        if not self.path:
            return {}
        try:
            st = os.stat(self.path)
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = "missing"
        except OSError as exc:
            seen = str(exc)
        with self._lock:
            if seen != self._seen:
                try:
                    if isinstance(seen, str) and seen != "missing":
                        raise OSError(seen)
                    self._accounts = read(self.path)
                    if not self._accounts and not self.legacy_password:
                        log.warning("no operator accounts yet: nobody can sign in to the flag page until"
                                    " `scripts/flask.sh operator add NAME`", extra={"event": "operator",
                                                                                   "path": self.path})
                except (OSError, ValueError) as exc:
                    # Fail closed: nobody gets in on a file that cannot be read.
                    log.error("operator accounts unreadable: nobody can sign in until it is fixed",
                              extra={"event": "operator", "path": self.path, "error": str(exc)[:300]})
                    self._accounts = {}
                self._seen = seen
            return self._accounts

    def verify(self, name: str, secret: str) -> str | None:
        """The account's name when `secret` is account `name`'s secret, else None. Unknown
        names cost a bcrypt check too, so the time taken does not tell which names exist."""
        accounts = self.accounts()
        hashed = accounts.get(name)
        if hashed is None and name == LEGACY_NAME and self.legacy_password:
            ok = hmac.compare_digest(secret.encode(), self.legacy_password.encode())
            return LEGACY_NAME if ok else None
        candidate = secret.encode()
        if hashed is None or len(candidate) > MAX_BYTES:
            bcrypt.checkpw(b"not-a-secret", self._dummy(accounts))
            return None
        return name if bcrypt.checkpw(candidate, hashed.encode()) else None

    def _dummy(self, accounts: dict[str, str]) -> bytes:
        """A hash at the cost the real ones have (the cost is in the hash: `$2b$12$...`)."""
        cost = max((int(h.split("$")[2]) for h in accounts.values()), default=self._rounds)
        if getattr(self, "_dummy_hash", b"")[4:6] != f"{cost:02d}".encode():
            self._dummy_hash = bcrypt.hashpw(b"not-a-secret", bcrypt.gensalt(cost))
        return self._dummy_hash
