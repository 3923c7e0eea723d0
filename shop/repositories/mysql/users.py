"""Users in MySQL."""
from __future__ import annotations

from ...domain import NewUser, User
from ...errors import DuplicateError
from ...db import retry_deadlocks
from . import _rows

_FIELDS = ("email", "first_name", "last_name")


class UserRepository:
    def __init__(self, db):
        self.db = db

    def get_by_id(self, user_id: int) -> User | None:
        return self._one("SELECT * FROM users WHERE id = %s", user_id)

    def get_by_username(self, username: str) -> User | None:
        return self._one("SELECT * FROM users WHERE username = %s", username)

    def get_by_email(self, email: str) -> User | None:
        return self._one("SELECT * FROM users WHERE email = %s", email)

    @retry_deadlocks
    def create(self, new: NewUser) -> User:
        """Insert a user; DuplicateError(field='username'|'email') when taken."""
        try:
            with self.db.cursor(write=True) as cur:
                cur.execute(
                    "INSERT INTO users (username, email, password_hash, first_name, last_name)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (new.username, new.email, new.password_hash, new.first_name, new.last_name),
                )
                cur.execute("SELECT * FROM users WHERE id = %s", (cur.lastrowid,))
                return _rows.user(cur.fetchone())
        except DuplicateError as exc:
            raise DuplicateError(f"{exc.field.capitalize()} already exists", field=exc.field) from exc

    @retry_deadlocks
    def update_profile(self, user_id: int, changes: dict) -> User | None:
        """Set email/first_name/last_name; None when the user does not exist."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        try:
            with self.db.cursor(write=True) as cur:
                if changes:
                    sets = ", ".join(f"{k} = %s" for k in changes)
                    cur.execute(f"UPDATE users SET {sets}, version = version + 1 WHERE id = %s",
                                (*changes.values(), user_id))
                cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
                row = cur.fetchone()
                return _rows.user(row) if row else None
        except DuplicateError as exc:
            raise DuplicateError("Email already exists", field="email") from exc

    @retry_deadlocks
    def set_seller(self, user_id: int, is_seller: bool = True) -> User | None:
        with self.db.cursor(write=True) as cur:
            cur.execute("UPDATE users SET is_seller = %s, version = version + 1 WHERE id = %s", (is_seller, user_id))
            cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
            row = cur.fetchone()
            return _rows.user(row) if row else None

    def _one(self, sql: str, *params) -> User | None:
        with self.db.cursor() as cur:
            cur.execute(sql, params)
            row = cur.fetchone()
            return _rows.user(row) if row else None
