"""Categories (a two-level tree) in MySQL."""
from __future__ import annotations

from contextlib import contextmanager

from ...domain import Category
from ...errors import ConflictError, DuplicateError, InvalidStateError, NotFoundError
from ...db import retry_deadlocks
from ...text import fold_key
from . import _rows

_COLS = "SELECT id, name, parent_id, created_at, owner_id, version FROM categories"


class CategoryRepository:
    def __init__(self, db):
        self.db = db

    def list_all(self) -> list[Category]:
        return self._many(f"{_COLS} ORDER BY name, id")

    def get_by_id(self, category_id: int) -> Category | None:
        rows = self._many(f"{_COLS} WHERE id = %s", category_id)
        return rows[0] if rows else None

    def get_by_name(self, name: str) -> Category | None:
        """The category whose name folds like `name` (shop/text.py): names are unique so."""
        rows = self._many(f"{_COLS} WHERE name_key = %s ORDER BY id LIMIT 1", fold_key(name))
        return rows[0] if rows else None

    def list_roots(self) -> list[Category]:
        return self._many(f"{_COLS} WHERE parent_id IS NULL ORDER BY name, id")

    def list_children(self, parent_id: int) -> list[Category]:
        return self._many(f"{_COLS} WHERE parent_id = %s ORDER BY name, id", parent_id)

    def get_path(self, category_id: int) -> list[Category]:
        """Categories from the root down to `category_id`; empty when it does not exist."""
        path: list[Category] = []
        seen: set[int] = set()
        with self.db.cursor() as cur:
            current = category_id
            while current is not None and current not in seen:
                seen.add(current)
                cur.execute(f"{_COLS} WHERE id = %s", (current,))
                row = cur.fetchone()
                if row is None:
                    break
                path.append(_rows.category(row))
                current = row["parent_id"]
        return list(reversed(path))

    @retry_deadlocks
    def create(self, name: str, parent_id: int | None = None, owner_id: int | None = None) -> Category:
        """DuplicateError(field='name') when a category's name folds alike: the unique key
        decides, so two creates racing cannot both succeed."""
        with _unique_name(), self.db.cursor(write=True) as cur:
            if parent_id is not None:
                cur.execute("SELECT id FROM categories WHERE id = %s", (parent_id,))
                if cur.fetchone() is None:
                    raise NotFoundError("Parent category not found")
            cur.execute("INSERT INTO categories (name, parent_id, name_key, owner_id) VALUES (%s, %s, %s, %s)",
                        (name, parent_id, fold_key(name), owner_id))
            cur.execute(f"{_COLS} WHERE id = %s", (cur.lastrowid,))
            return _rows.category(cur.fetchone())

    @retry_deadlocks
    def update(self, category_id: int, changes: dict) -> Category | None:
        unknown = set(changes) - {"name", "parent_id", "owner_id"}
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if "name" in changes:
            changes = {**changes, "name_key": fold_key(changes["name"])}
        with _unique_name(), self.db.cursor(write=True) as cur:
            if changes:
                sets = ", ".join(f"{k} = %s" for k in changes)
                cur.execute(f"UPDATE categories SET {sets}, version = version + 1 WHERE id = %s",
                            (*changes.values(), category_id))
            cur.execute(f"{_COLS} WHERE id = %s", (category_id,))
            row = cur.fetchone()
            return _rows.category(row) if row else None

    @retry_deadlocks
    def delete(self, category_id: int) -> bool:
        """Delete a leaf category without products; False when it does not exist."""
        with self.db.cursor(write=True) as cur:
            cur.execute("SELECT id FROM categories WHERE id = %s FOR UPDATE", (category_id,))
            if cur.fetchone() is None:
                return False
            cur.execute("SELECT COUNT(*) AS n FROM categories WHERE parent_id = %s", (category_id,))
            if cur.fetchone()["n"]:
                raise InvalidStateError("Cannot delete category with child categories")
            cur.execute("SELECT COUNT(*) AS n FROM products WHERE category_id = %s", (category_id,))
            if cur.fetchone()["n"]:
                raise ConflictError("Cannot delete category that still has products")
            cur.execute("DELETE FROM categories WHERE id = %s", (category_id,))
            return True

    def _many(self, sql: str, *params) -> list[Category]:
        with self.db.cursor() as cur:
            cur.execute(sql, params)
            return [_rows.category(r) for r in cur.fetchall()]


@contextmanager
def _unique_name():
    try:
        yield
    except DuplicateError as exc:
        raise DuplicateError("Category name already exists", field="name") from exc
