"""Shopping carts in MySQL: one row per (user, product)."""
from __future__ import annotations

from ...domain import CartItem
from ...db import retry_deadlocks
from ...errors import InsufficientInventoryError
from . import _rows

_CART_SELECT = _rows.PRODUCT_SELECT.replace(
    "SELECT p.id,",
    "SELECT sc.id AS cart_id, sc.user_id AS cart_user_id, sc.quantity AS cart_quantity,"
    " sc.created_at AS cart_created_at, sc.updated_at AS cart_updated_at, sc.version AS cart_version, p.id,",
).replace("FROM products p", "FROM shopping_carts sc JOIN products p ON p.id = sc.product_id")


class ShoppingCartRepository:
    def __init__(self, db):
        self.db = db

    def list_items(self, user_id: int) -> list[CartItem]:
        """The user's cart, most recently added first."""
        with self.db.cursor() as cur:
            cur.execute(f"{_CART_SELECT} WHERE sc.user_id = %s ORDER BY sc.created_at DESC, sc.id DESC",
                        (user_id,))
            return [_rows.cart_item(r) for r in cur.fetchall()]

    def get_item(self, user_id: int, product_id: int) -> CartItem | None:
        with self.db.cursor() as cur:
            return self._get(cur, user_id, product_id)

    @retry_deadlocks
    def add_item(self, user_id: int, product_id: int, quantity: int, limit: int | None = None) -> CartItem:
        """Add `quantity` of a product, or increase the line that already holds it. With
        `limit`, refused when the line would hold more: checked on the row the upsert has
        locked, so parallel adds cannot pass the limit together."""
        with self.db.cursor(write=True) as cur:
            cur.execute(
                "INSERT INTO shopping_carts (user_id, product_id, quantity) VALUES (%s, %s, %s)"
                " ON DUPLICATE KEY UPDATE quantity = quantity + VALUES(quantity), version = version + 1",
                (user_id, product_id, quantity),
            )
            line = self._get(cur, user_id, product_id)
            if limit is not None and line.quantity > limit:
                raise InsufficientInventoryError(f"Quantity cannot exceed {limit} items per product")
            return line

    @retry_deadlocks
    def set_quantity(self, user_id: int, product_id: int, quantity: int) -> CartItem | None:
        with self.db.cursor(write=True) as cur:
            cur.execute("UPDATE shopping_carts SET quantity = %s, version = version + 1"
                        " WHERE user_id = %s AND product_id = %s", (quantity, user_id, product_id))
            return self._get(cur, user_id, product_id)

    @retry_deadlocks
    def remove_item(self, user_id: int, product_id: int) -> bool:
        with self.db.cursor(write=True) as cur:
            cur.execute("DELETE FROM shopping_carts WHERE user_id = %s AND product_id = %s",
                        (user_id, product_id))
            return cur.rowcount > 0

    @retry_deadlocks
    def clear(self, user_id: int) -> int:
        with self.db.cursor(write=True) as cur:
            cur.execute("DELETE FROM shopping_carts WHERE user_id = %s", (user_id,))
            return cur.rowcount

    @staticmethod
    def _get(cur, user_id: int, product_id: int) -> CartItem | None:
        cur.execute(f"{_CART_SELECT} WHERE sc.user_id = %s AND sc.product_id = %s", (user_id, product_id))
        row = cur.fetchone()
        return _rows.cart_item(row) if row else None
