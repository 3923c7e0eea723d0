"""Turning catalog items into domain values, with the names the storefront shows.

A product item carries copies of its category's name and its seller's username and email
(`category_name`, `seller_username`, `seller_email`), so a product is one read; the writes that
change the originals keep the copies right (copies.py). An item written before the copies existed
is joined with one batched get, as it always was.
"""
from __future__ import annotations

from decimal import Decimal

from ...domain import Category, Product
from . import keys
from .client import held_version, parse_iso


def to_category(item: dict) -> Category:
    parent = item.get("parent_id")
    return Category(id=int(item["id"]), name=item["name"], parent_id=int(parent) if parent is not None else None,
                    created_at=parse_iso(item["created_at"]),
                    owner_id=int(item["owner_id"]) if item.get("owner_id") is not None else None,
                    version=held_version(item))


def to_product(item: dict) -> Product:
    return Product(
        id=int(item["id"]), seller_id=int(item["seller_id"]), category_id=int(item["category_id"]),
        name=item["name"], description=item.get("description"), price=Decimal(item["price"]).quantize(Decimal("0.01")),
        inventory_quantity=int(item["inventory_quantity"]), image_url=item.get("image_url"),
        created_at=parse_iso(item["created_at"]), updated_at=parse_iso(item["updated_at"]),
        category_name=item.get("category_name"), seller_username=item.get("seller_username"),
        seller_email=item.get("seller_email"), version=held_version(item))


def name_copies(category: dict | None, seller: dict | None) -> dict:
    """The copies a product item keeps, from its category's and its seller's items."""
    return {"category_name": category["name"] if category else None,
            "seller_username": seller["username"] if seller else None,
            "seller_email": seller["email"] if seller else None}



def with_details(dynamo, items: list[dict]) -> list[Product]:
    """Products from their items; only items without name copies cost a batched join."""
    bare = [i for i in items if "seller_username" not in i or "category_name" not in i]
    if bare:
        cats = dynamo.batch_get(dynamo.table("catalog"), [keys.category(int(i["category_id"])) for i in bare])
        users = dynamo.batch_get(dynamo.table("users"), [keys.user(int(i["seller_id"])) for i in bare])
        by_cat = {int(c["id"]): c for c in cats}
        by_user = {int(u["id"]): u for u in users}
        for i in bare:
            i.update(name_copies(by_cat.get(int(i["category_id"])), by_user.get(int(i["seller_id"]))))
    return [to_product(i) for i in items]


def products_by_id(dynamo, product_ids) -> dict[int, Product]:
    ids = list(product_ids)
    if not ids:
        return {}
    items = dynamo.batch_get(dynamo.table("catalog"), [keys.product(int(p)) for p in ids])
    return {p.id: p for p in with_details(dynamo, items)}
