"""The migration target: the same classes, methods and domain types as
shop.repositories.mysql, on DynamoDB (boto3). Write methods also accept
`mirror_of=<the MySQL result>` so a dual write reuses MySQL's IDs and timestamps."""
from .carts import ShoppingCartRepository
from .categories import CategoryRepository
from .client import Dynamo
from .counters import IdAllocator
from .orders import OrderRepository
from .products import ProductRepository
from .users import UserRepository

__all__ = ["CategoryRepository", "Dynamo", "IdAllocator", "OrderRepository", "ProductRepository",
           "ShoppingCartRepository", "UserRepository"]
