"""Business rules; the web layer calls these, these call the repositories."""
from __future__ import annotations

from dataclasses import dataclass

from .auth import AuthService
from .cart import CartService
from .catalog import CategoryService, ProductService
from .orders import OrderService, PaymentService


@dataclass
class Services:
    auth: AuthService
    products: ProductService
    categories: CategoryService
    cart: CartService
    orders: OrderService

    @classmethod
    def build(cls, repos, settings) -> "Services":
        cart = CartService(repos.carts, repos.products)
        return cls(
            auth=AuthService(repos.users, settings),
            products=ProductService(repos.products, repos.categories),
            categories=CategoryService(repos.categories, repos.products),
            cart=cart,
            orders=OrderService(repos.orders, cart, PaymentService(settings.payment_delay_ms)),
        )
