"""Orders in MySQL; checkout and cancel are single transactions."""
from __future__ import annotations

from decimal import Decimal

from ...domain import MAX_ORDER_LINES, MAX_ORDER_TOTAL, Order, OrderSummary, Page, too_many_lines
from ...errors import (EmptyCartError, InsufficientInventoryError, InvalidStateError, NotFoundError,
                       ValidationError)
from ...db import retry_deadlocks
from . import _rows

_CENT = Decimal("0.01")
_ITEM_SELECT = _rows.PRODUCT_SELECT.replace(
    "SELECT p.id,",
    "SELECT oi.id AS item_id, oi.order_id AS item_order_id, oi.quantity AS item_quantity,"
    " oi.price_at_time AS item_price, p.id,",
).replace("FROM products p", "FROM order_items oi JOIN products p ON p.id = oi.product_id")


class OrderRepository:
    def __init__(self, db):
        self.db = db

    @retry_deadlocks
    def checkout(self, user_id: int) -> Order:
        """Turn the user's cart into a completed order in one transaction.

        Product rows are locked in id order, so concurrent checkouts serialise
        on the items they share and never oversell or deadlock each other.
        """
        with self.db.cursor(write=True) as cur:
            cur.execute(
                "SELECT sc.product_id, sc.quantity, p.name, p.price, p.inventory_quantity"
                " FROM shopping_carts sc JOIN products p ON p.id = sc.product_id"
                " WHERE sc.user_id = %s ORDER BY p.id FOR UPDATE",
                (user_id,),
            )
            lines = cur.fetchall()
            if not lines:
                raise EmptyCartError("Cart is empty")
            if len(lines) > MAX_ORDER_LINES:  # what one DynamoDB transaction holds: the same in every phase
                raise ValidationError(too_many_lines(len(lines)))
            issues = [
                f"{ln['name']}: requested {ln['quantity']}, but only {ln['inventory_quantity']} available"
                for ln in lines if ln["quantity"] > ln["inventory_quantity"]
            ]
            if issues:
                raise InsufficientInventoryError("Inventory issues: " + ", ".join(issues), issues=issues)
            total = sum((Decimal(ln["price"]) * ln["quantity"] for ln in lines), Decimal(0)).quantize(_CENT)
            if total > MAX_ORDER_TOTAL:  # prices may have risen since the service checked the cart
                raise ValidationError(f"An order's total cannot exceed {MAX_ORDER_TOTAL:,}")
            cur.execute("INSERT INTO orders (user_id, total_amount, status) VALUES (%s, %s, 'completed')",
                        (user_id, total))
            order_id = cur.lastrowid
            for ln in lines:
                cur.execute(
                    "INSERT INTO order_items (order_id, product_id, quantity, price_at_time)"
                    " VALUES (%s, %s, %s, %s)",
                    (order_id, ln["product_id"], ln["quantity"], ln["price"]),
                )
                cur.execute("UPDATE products SET inventory_quantity = inventory_quantity - %s,"
                            " version = version + 1 WHERE id = %s", (ln["quantity"], ln["product_id"]))
            cur.execute("DELETE FROM shopping_carts WHERE user_id = %s", (user_id,))
            return self._load(cur, order_id)

    def get_by_id(self, order_id: int) -> Order | None:
        with self.db.cursor() as cur:
            return self._load(cur, order_id)

    def list_by_user(self, user_id: int, page: int = 1, limit: int = 20) -> Page:
        """The user's orders, newest first, with their items."""
        with self.db.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM orders WHERE user_id = %s", (user_id,))
            total = cur.fetchone()["n"]
            cur.execute(
                "SELECT * FROM orders WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
                (user_id, limit, (page - 1) * limit),
            )
            rows = cur.fetchall()
            items = self._items(cur, [r["id"] for r in rows])
            orders = [_rows.order(r, items.get(r["id"], [])) for r in rows]
        return Page(items=orders, total=total, page=page, limit=limit)

    @retry_deadlocks
    def set_status(self, order_id: int, status: str, expected: str | None = None) -> Order | None:
        """Set the status; with `expected`, only if the order still has that status (checked
        under the row lock, so two racing transitions cannot both apply)."""
        with self.db.cursor(write=True) as cur:
            if expected is not None:
                cur.execute("SELECT status FROM orders WHERE id = %s FOR UPDATE", (order_id,))
                row = cur.fetchone()
                if row is None:
                    return None
                if row["status"] != expected:
                    raise InvalidStateError(f"The order is {row['status']}, no longer {expected}")
            cur.execute("UPDATE orders SET status = %s, version = version + 1 WHERE id = %s", (status, order_id))
            return self._load(cur, order_id)

    @retry_deadlocks
    def cancel(self, order_id: int) -> Order:
        """Cancel a pending order and put its items back in stock, atomically."""
        with self.db.cursor(write=True) as cur:
            cur.execute("SELECT status FROM orders WHERE id = %s FOR UPDATE", (order_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFoundError("Order not found")
            if row["status"] != "pending":
                raise InvalidStateError("Only pending orders can be cancelled")
            cur.execute("SELECT product_id, quantity FROM order_items WHERE order_id = %s ORDER BY product_id",
                        (order_id,))
            for item in cur.fetchall():
                cur.execute("UPDATE products SET inventory_quantity = inventory_quantity + %s,"
                            " version = version + 1 WHERE id = %s", (item["quantity"], item["product_id"]))
            cur.execute("UPDATE orders SET status = 'cancelled', version = version + 1 WHERE id = %s", (order_id,))
            return self._load(cur, order_id)

    def summary_by_user(self, user_id: int) -> OrderSummary:
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) AS n, COALESCE(SUM(total_amount), 0) AS spent,"
                " COALESCE(SUM(status = 'completed'), 0) AS completed,"
                " COALESCE(SUM(status = 'pending'), 0) AS pending,"
                " COALESCE(SUM(status = 'cancelled'), 0) AS cancelled"
                " FROM orders WHERE user_id = %s",
                (user_id,),
            )
            r = cur.fetchone()
        return OrderSummary(total_orders=int(r["n"]), total_spent=Decimal(r["spent"]).quantize(_CENT),
                            completed_orders=int(r["completed"]), pending_orders=int(r["pending"]),
                            cancelled_orders=int(r["cancelled"]))

    def _load(self, cur, order_id: int) -> Order | None:
        cur.execute("SELECT * FROM orders WHERE id = %s", (order_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return _rows.order(row, self._items(cur, [order_id]).get(order_id, []))

    @staticmethod
    def _items(cur, order_ids: list[int]) -> dict:
        if not order_ids:
            return {}
        marks = ", ".join(["%s"] * len(order_ids))
        cur.execute(f"{_ITEM_SELECT} WHERE oi.order_id IN ({marks}) ORDER BY oi.id", order_ids)
        grouped: dict[int, list] = {}
        for r in cur.fetchall():
            grouped.setdefault(r["item_order_id"], []).append(_rows.order_item(r))
        return grouped
