"""The shopping cart: quantities checked against inventory."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..domain import MAX_ORDER_LINES, MAX_PER_PRODUCT, CartItem
from ..errors import InsufficientInventoryError, NotFoundError, ValidationError
from .validation import Checker


@dataclass(frozen=True)
class Cart:
    items: list

    @property
    def total_items(self) -> int:
        return sum(i.quantity for i in self.items)

    @property
    def total_amount(self) -> Decimal:
        return sum((i.product.price * i.quantity for i in self.items), Decimal("0.00"))

    @property
    def issues(self) -> list[str]:
        return [f"{i.product.name}: requested {i.quantity}, but only {i.product.inventory_quantity} available"
                for i in self.items if i.quantity > i.product.inventory_quantity]


class CartService:
    def __init__(self, carts, products):
        self.carts = carts
        self.products = products

    def get(self, user_id: int) -> Cart:
        return Cart(self.carts.list_items(user_id))

    def add(self, user_id: int, data) -> Cart:
        c = Checker(data)
        product_id = c.integer("productId", minimum=1, msg="Product ID must be a positive integer")
        quantity = c.integer("quantity", minimum=1, maximum=MAX_PER_PRODUCT, msg="Quantity must be between 1 and 100")
        c.done()
        product = self.products.get_by_id(product_id)
        if product is None:
            raise NotFoundError("Product not found")
        existing = self.carts.get_item(user_id, product_id)
        wanted = quantity + (existing.quantity if existing else 0)
        if wanted > MAX_PER_PRODUCT:
            raise InsufficientInventoryError(f"Quantity cannot exceed {MAX_PER_PRODUCT} items per product")
        if wanted > product.inventory_quantity:
            raise InsufficientInventoryError(
                f"Insufficient inventory. Available: {product.inventory_quantity}, Requested: {wanted}")
        if existing is None and len(self.carts.list_items(user_id)) >= MAX_ORDER_LINES:
            raise ValidationError(f"A cart holds at most {MAX_ORDER_LINES} different products (what one order"
                                  " can hold): check out or remove some first")
        # The store checks the per-product limit again on the line it writes: parallel adds
        # that each passed the check above cannot pass it together.
        self.carts.add_item(user_id, product_id, quantity, limit=MAX_PER_PRODUCT)
        return self.get(user_id)

    def update(self, user_id: int, product_id: int, data) -> Cart:
        c = Checker(data)
        quantity = c.integer("quantity", minimum=0, maximum=MAX_PER_PRODUCT, msg="Quantity must be between 0 and 100")
        c.done()
        item = self._item(user_id, product_id)
        if quantity == 0:
            self.carts.remove_item(user_id, product_id)
            return self.get(user_id)
        if quantity > item.product.inventory_quantity:
            raise InsufficientInventoryError(
                f"Insufficient inventory. Available: {item.product.inventory_quantity}, Requested: {quantity}")
        self.carts.set_quantity(user_id, product_id, quantity)
        return self.get(user_id)

    def remove(self, user_id: int, product_id: int) -> Cart:
        self._item(user_id, product_id)
        self.carts.remove_item(user_id, product_id)
        return self.get(user_id)

    def clear(self, user_id: int) -> None:
        self.carts.clear(user_id)

    def _item(self, user_id: int, product_id: int) -> CartItem:
        item = self.carts.get_item(user_id, product_id)
        if item is None:
            raise NotFoundError("Cart item not found")
        return item
