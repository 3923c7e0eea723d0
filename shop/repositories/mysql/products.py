"""Products in MySQL."""
from __future__ import annotations

from decimal import Decimal

from ...domain import NewProduct, Page, Product, ProductFilters, SellerStats
from ...errors import ConflictError, NotFoundError
from ...db import retry_deadlocks
from ...text import fold, like_pattern
from . import _rows

_UPDATABLE = ("name", "description", "category_id", "price", "inventory_quantity", "image_url")


class ProductRepository:
    def __init__(self, db):
        self.db = db

    def get_by_id(self, product_id: int) -> Product | None:
        with self.db.cursor() as cur:
            cur.execute(f"{_rows.PRODUCT_SELECT} WHERE p.id = %s", (product_id,))
            row = cur.fetchone()
            return _rows.product(row) if row else None

    def list_products(self, filters: ProductFilters, page: int = 1, limit: int = 20) -> Page:
        """Newest first. A category filter includes its direct subcategories."""
        where, params = [], []
        if filters.category_id is not None:
            where.append("(p.category_id = %s OR p.category_id IN"
                         " (SELECT id FROM categories WHERE parent_id = %s))")
            params += [filters.category_id, filters.category_id]
        if filters.seller_id is not None:
            where.append("p.seller_id = %s")
            params.append(filters.seller_id)
        if filters.search:
            # Folded text, compared byte for byte: the same answer as DynamoDB's (shop/text.py).
            where.append("(p.name_fold LIKE %s OR p.description_fold LIKE %s)")
            pattern = like_pattern(filters.search)
            params += [pattern, pattern]
        if filters.min_price is not None:
            where.append("p.price >= %s")
            params.append(filters.min_price)
        if filters.max_price is not None:
            where.append("p.price <= %s")
            params.append(filters.max_price)
        if filters.in_stock_only:
            where.append("p.inventory_quantity > 0")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self.db.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) AS n FROM products p{clause}", params)
            total = cur.fetchone()["n"]
            cur.execute(
                f"{_rows.PRODUCT_SELECT}{clause} ORDER BY p.created_at DESC, p.id DESC LIMIT %s OFFSET %s",
                (*params, limit, (page - 1) * limit),
            )
            items = [_rows.product(r) for r in cur.fetchall()]
        return Page(items=items, total=total, page=page, limit=limit)

    @retry_deadlocks
    def create(self, seller_id: int, new: NewProduct) -> Product:
        with self.db.cursor(write=True) as cur:
            cur.execute("SELECT id FROM categories WHERE id = %s", (new.category_id,))
            if cur.fetchone() is None:
                raise NotFoundError("Category not found")
            cur.execute(
                "INSERT INTO products (seller_id, category_id, name, description, price,"
                " inventory_quantity, image_url, name_fold, description_fold)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (seller_id, new.category_id, new.name, new.description, new.price,
                 new.inventory_quantity, new.image_url, fold(new.name), fold(new.description or "")),
            )
            cur.execute(f"{_rows.PRODUCT_SELECT} WHERE p.id = %s", (cur.lastrowid,))
            return _rows.product(cur.fetchone())

    @retry_deadlocks
    def update(self, product_id: int, changes: dict) -> Product | None:
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        with self.db.cursor(write=True) as cur:
            if "category_id" in changes:
                cur.execute("SELECT id FROM categories WHERE id = %s", (changes["category_id"],))
                if cur.fetchone() is None:
                    raise NotFoundError("Category not found")
            if changes:
                stored = {**changes, **_folds(changes)}
                sets = ", ".join(f"{k} = %s" for k in stored)
                cur.execute(f"UPDATE products SET {sets}, version = version + 1 WHERE id = %s",
                            (*stored.values(), product_id))
            cur.execute(f"{_rows.PRODUCT_SELECT} WHERE p.id = %s", (product_id,))
            row = cur.fetchone()
            return _rows.product(row) if row else None

    def set_inventory(self, product_id: int, quantity: int) -> Product | None:
        return self.update(product_id, {"inventory_quantity": quantity})

    @retry_deadlocks
    def delete(self, product_id: int) -> bool:
        """Delete a product never ordered (order history keeps its products)."""
        with self.db.cursor(write=True) as cur:
            cur.execute("SELECT id FROM products WHERE id = %s FOR UPDATE", (product_id,))
            if cur.fetchone() is None:
                return False
            cur.execute("SELECT COUNT(*) AS n FROM order_items WHERE product_id = %s", (product_id,))
            if cur.fetchone()["n"]:
                raise ConflictError("Product has been ordered and cannot be deleted;"
                                    " set its inventory to 0 instead")
            cur.execute("DELETE FROM shopping_carts WHERE product_id = %s", (product_id,))
            cur.execute("DELETE FROM products WHERE id = %s", (product_id,))
            return True

    def seller_stats(self, seller_id: int) -> SellerStats:
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) AS total,"
                " COALESCE(SUM(inventory_quantity > 0), 0) AS in_stock,"
                " COALESCE(SUM(inventory_quantity * price), 0) AS value"
                " FROM products WHERE seller_id = %s",
                (seller_id,),
            )
            row = cur.fetchone()
        total, in_stock = int(row["total"]), int(row["in_stock"])
        return SellerStats(total_products=total, in_stock_products=in_stock,
                           out_of_stock_products=total - in_stock,
                           total_inventory_value=Decimal(row["value"]).quantize(Decimal("0.01")))


def _folds(changes: dict) -> dict:
    """The folded text a change of name or description moves with it."""
    out = {}
    if "name" in changes:
        out["name_fold"] = fold(changes["name"])
    if "description" in changes:
        out["description_fold"] = fold(changes["description"] or "")
    return out
