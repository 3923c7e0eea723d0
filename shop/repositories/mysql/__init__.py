"""The original data layer: pymysql, parameterised SQL, domain values out.

This package knows nothing of the migration; the routing layer wraps its methods from outside.
"""
from .carts import ShoppingCartRepository
from .categories import CategoryRepository
from .orders import OrderRepository
from .products import ProductRepository
from .users import UserRepository

__all__ = ["CategoryRepository", "OrderRepository", "ProductRepository",
           "ShoppingCartRepository", "UserRepository"]
