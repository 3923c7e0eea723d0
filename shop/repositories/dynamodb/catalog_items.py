"""Turning catalog items into domain values, with the names the storefront shows.

Products do not copy their category's name or their seller's username: those change,
and a copy would need a fan-out update. Reads join them with one batched get instead.
"""
from __future__ import annotations

from decimal import Decimal

from ...domain import Category, Product
from . import keys
from .client import parse_iso


def to_category(item: dict) -> Category:
    parent = item.get("parent_id")
    return Category(id=int(item["id"]), name=item["name"], parent_id=int(parent) if parent is not None else None,
                    created_at=parse_iso(item["created_at"]))


def to_product(item: dict, category: dict | None, seller: dict | None) -> Product:
    return Product(
        id=int(item["id"]), seller_id=int(item["seller_id"]), category_id=int(item["category_id"]),
        name=item["name"], description=item.get("description"), price=Decimal(item["price"]).quantize(Decimal("0.01")),
        inventory_quantity=int(item["inventory_quantity"]), image_url=item.get("image_url"),
        created_at=parse_iso(item["created_at"]), updated_at=parse_iso(item["updated_at"]),
        category_name=category["name"] if category else None,
        seller_username=seller["username"] if seller else None, seller_email=seller["email"] if seller else None)


def with_details(dynamo, items: list[dict]) -> list[Product]:
    """Products from their items, joined with categories and sellers in two batched gets."""
    if not items:
        return []
    cats = dynamo.batch_get(dynamo.table("catalog"), [keys.category(int(i["category_id"])) for i in items])
    users = dynamo.batch_get(dynamo.table("users"), [keys.user(int(i["seller_id"])) for i in items])
    by_cat = {int(c["id"]): c for c in cats}
    by_user = {int(u["id"]): u for u in users}
    return [to_product(i, by_cat.get(int(i["category_id"])), by_user.get(int(i["seller_id"]))) for i in items]


def products_by_id(dynamo, product_ids) -> dict[int, Product]:
    items = dynamo.batch_get(dynamo.table("catalog"), [keys.product(int(p)) for p in product_ids])
    return {p.id: p for p in with_details(dynamo, items)}
