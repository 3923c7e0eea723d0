"""Domain values shared by both repository families.

Both the MySQL and the DynamoDB repositories return these types, so a dual read
compares two values of the same type attribute by attribute.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Generic, Optional, TypeVar

T = TypeVar("T")
MAX_ORDER_LINES = 33   # different products in one order: what one DynamoDB transaction can check out
MAX_PER_PRODUCT = 100  # of one product in one cart


def too_many_lines(count: int) -> str:
    """Why a checkout of `count` different products is refused: the same words in every phase."""
    return (f"An order holds at most {MAX_ORDER_LINES} different products; this cart has {count}:"
            " remove some, then check out")


def versioned():
    """A record's version: MySQL bumps it with every change, in the same statement, and a copy
    into DynamoDB is kept only if it is newer than what DynamoDB holds (docs/data-model.md).
    Not part of the value: two records equal but for their version are equal."""
    return field(default=0, compare=False)

# In the order an order moves: awaiting payment, paid (checkout), then the seller's fulfilment;
# or cancelled by its buyer while pending. The reference stores only the first two and
# cancelled, mapping processing to pending (which would reopen a paid order): here the
# fulfilment steps are statuses of their own, appended to the MySQL ENUM.
ORDER_STATUSES = ("pending", "completed", "processing", "shipped", "delivered", "cancelled")
FORWARD_STATUSES = ("pending", "completed", "processing", "shipped", "delivered")
MAX_ORDER_TOTAL = Decimal("99999999.99")  # orders.total_amount is DECIMAL(10,2)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    email: str
    password_hash: str
    first_name: Optional[str]
    last_name: Optional[str]
    is_seller: bool
    created_at: datetime
    updated_at: datetime
    version: int = versioned()


@dataclass(frozen=True)
class NewUser:
    username: str
    email: str
    password_hash: str
    first_name: Optional[str] = None
    last_name: Optional[str] = None


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    parent_id: Optional[int]
    created_at: datetime
    owner_id: Optional[int] = None  # the seller who created it; None: the shop's own (operators manage it)
    version: int = versioned()


@dataclass(frozen=True)
class Product:
    """A product with the names the storefront shows next to it."""

    id: int
    seller_id: int
    category_id: int
    name: str
    description: Optional[str]
    price: Decimal
    inventory_quantity: int
    image_url: Optional[str]
    created_at: datetime
    updated_at: datetime
    category_name: Optional[str] = None
    seller_username: Optional[str] = None
    seller_email: Optional[str] = None
    version: int = versioned()


@dataclass(frozen=True)
class NewProduct:
    category_id: int
    name: str
    price: Decimal
    inventory_quantity: int
    description: Optional[str] = None
    image_url: Optional[str] = None


@dataclass(frozen=True)
class ProductFilters:
    category_id: Optional[int] = None
    seller_id: Optional[int] = None
    search: Optional[str] = None
    min_price: Optional[Decimal] = None
    max_price: Optional[Decimal] = None
    in_stock_only: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list
    total: int
    page: int
    limit: int

    @property
    def total_pages(self) -> int:
        return (self.total + self.limit - 1) // self.limit if self.limit else 0


@dataclass(frozen=True)
class SellerStats:
    total_products: int
    in_stock_products: int
    out_of_stock_products: int
    total_inventory_value: Decimal


@dataclass(frozen=True)
class CartItem:
    id: int
    user_id: int
    product_id: int
    quantity: int
    created_at: datetime
    updated_at: datetime
    product: Optional[Product] = None
    version: int = versioned()


@dataclass(frozen=True)
class OrderedProduct:
    """What an order shows of a product: its current names, as the reference's join does.

    Not the whole product: stock and price change with every sale, and an order read in
    DynamoDB is one item holding copies of these fields (docs/data-model.md), kept right by
    the writes that change them."""

    id: int
    seller_id: int
    name: str
    description: Optional[str]
    category_name: Optional[str]
    seller_username: Optional[str]


@dataclass(frozen=True)
class OrderItem:
    id: int
    order_id: int
    product_id: int
    quantity: int
    price_at_time: Decimal
    product: Optional[OrderedProduct] = None
    # The whole product row as MySQL's own transaction left it (its stock moved, its version
    # bumped), read by MySQL only: a mirrored checkout or cancel copies it into DynamoDB, where
    # it is kept only if newer. Not part of the order's value.
    as_committed: Optional[Product] = field(default=None, compare=False)


@dataclass(frozen=True)
class Order:
    id: int
    user_id: int
    total_amount: Decimal
    status: str
    created_at: datetime
    updated_at: datetime
    items: list = field(default_factory=list)
    version: int = versioned()


@dataclass(frozen=True)
class OrderSummary:
    total_orders: int
    total_spent: Decimal
    completed_orders: int
    pending_orders: int
    cancelled_orders: int
