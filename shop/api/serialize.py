"""Domain values -> the reference backend's JSON shapes."""
from __future__ import annotations

from datetime import datetime, timezone


def iso(dt: datetime | None) -> str | None:
    """JavaScript's Date.toISOString(): UTC with milliseconds and a Z."""
    if dt is None:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now() -> str:
    return iso(datetime.now(timezone.utc))


def money(value) -> float:
    return float(value)


def user(u) -> dict:
    return {"id": u.id, "username": u.username, "email": u.email, "first_name": u.first_name,
            "last_name": u.last_name, "is_seller": u.is_seller,
            "created_at": iso(u.created_at), "updated_at": iso(u.updated_at)}


def category(c) -> dict:
    return {"id": c.id, "name": c.name, "parent_id": c.parent_id, "created_at": iso(c.created_at)}


def tree(nodes) -> list[dict]:
    return [{**category(n["category"]), "children": tree(n["children"])} for n in nodes]


def product(p) -> dict:
    return {
        "id": p.id, "seller_id": p.seller_id, "category_id": p.category_id, "name": p.name,
        "description": p.description, "price": money(p.price), "inventory_quantity": p.inventory_quantity,
        "imageUrl": p.image_url, "category": {"id": p.category_id, "name": p.category_name or "Uncategorized"},
        "seller_username": p.seller_username, "seller_email": p.seller_email,
        "created_at": iso(p.created_at), "updated_at": iso(p.updated_at),
    }


def product_page(page, **extra) -> dict:
    return {"products": [product(p) for p in page.items],
            "pagination": {"total": page.total, "page": page.page, "limit": page.limit,
                           "total_pages": page.total_pages}, **extra}


def cart(c) -> dict:
    return {
        "items": [{
            "id": i.id, "productId": i.product_id, "quantity": i.quantity,
            "product": {"id": i.product.id, "name": i.product.name, "description": i.product.description,
                        "price": money(i.product.price), "inventoryQuantity": i.product.inventory_quantity,
                        "categoryName": i.product.category_name, "sellerUsername": i.product.seller_username},
            "subtotal": money(i.product.price * i.quantity),
            "createdAt": iso(i.created_at), "updatedAt": iso(i.updated_at),
        } for i in c.items],
        "summary": cart_summary(c),
    }


def cart_summary(c) -> dict:
    return {"totalItems": c.total_items, "totalAmount": money(c.total_amount), "itemCount": len(c.items)}


def order(o) -> dict:
    return {
        "id": o.id, "userId": o.user_id, "totalAmount": money(o.total_amount), "status": o.status,
        "items": [{
            "id": i.id, "productId": i.product_id, "quantity": i.quantity, "priceAtTime": money(i.price_at_time),
            "subtotal": money(i.price_at_time * i.quantity),
            "product": {"id": i.product.id, "name": i.product.name, "description": i.product.description,
                        "categoryName": i.product.category_name, "sellerUsername": i.product.seller_username},
        } for i in o.items],
        "createdAt": iso(o.created_at), "updatedAt": iso(o.updated_at),
    }
