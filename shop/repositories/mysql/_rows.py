"""Row -> domain value conversions shared by the MySQL repositories."""
from __future__ import annotations

from decimal import Decimal

from ...domain import CartItem, Category, Order, OrderedProduct, OrderItem, Product, User

PRODUCT_SELECT = """
SELECT p.id, p.seller_id, p.category_id, p.name, p.description, p.price,
       p.inventory_quantity, p.image_url, p.created_at, p.updated_at, p.version,
       c.name AS category_name, u.username AS seller_username, u.email AS seller_email
FROM products p
JOIN categories c ON c.id = p.category_id
JOIN users u ON u.id = p.seller_id
"""


def user(row) -> User:
    return User(
        id=row["id"], username=row["username"], email=row["email"],
        password_hash=row["password_hash"], first_name=row["first_name"],
        last_name=row["last_name"], is_seller=bool(row["is_seller"]),
        created_at=row["created_at"], updated_at=row["updated_at"], version=row["version"],
    )


def category(row) -> Category:
    return Category(id=row["id"], name=row["name"], parent_id=row["parent_id"],
                    created_at=row["created_at"], owner_id=row["owner_id"], version=row["version"])


def product(row, prefix: str = "") -> Product:
    g = lambda k: row[prefix + k]  # noqa: E731
    return Product(
        id=g("id"), seller_id=g("seller_id"), category_id=g("category_id"), name=g("name"),
        description=g("description"), price=Decimal(g("price")),
        inventory_quantity=g("inventory_quantity"), image_url=g("image_url"),
        created_at=g("created_at"), updated_at=g("updated_at"),
        category_name=g("category_name"), seller_username=g("seller_username"),
        seller_email=g("seller_email"), version=g("version"),
    )


def cart_item(row) -> CartItem:
    return CartItem(
        id=row["cart_id"], user_id=row["cart_user_id"], product_id=row["id"],
        quantity=row["cart_quantity"], created_at=row["cart_created_at"],
        updated_at=row["cart_updated_at"], product=product(row), version=row["cart_version"],
    )


def order(row, items) -> Order:
    return Order(
        id=row["id"], user_id=row["user_id"], total_amount=Decimal(row["total_amount"]),
        status=row["status"], created_at=row["created_at"], updated_at=row["updated_at"],
        items=list(items), version=row["version"],
    )


def order_item(row) -> OrderItem:
    return OrderItem(
        id=row["item_id"], order_id=row["item_order_id"], product_id=row["id"],
        quantity=row["item_quantity"], price_at_time=Decimal(row["item_price"]),
        product=OrderedProduct(id=row["id"], seller_id=row["seller_id"], name=row["name"],
                               description=row["description"], category_name=row["category_name"],
                               seller_username=row["seller_username"]),
        as_committed=product(row),
    )


