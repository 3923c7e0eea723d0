"""The two repository families, MySQL's (the original data layer) and DynamoDB's (the
migration's target): the same classes, methods and domain values. `Repositories` holds one
family's five, built from one table; shop/migration/entities/ names each by its attribute here
(a test checks the two agree)."""
from __future__ import annotations

from dataclasses import dataclass, fields

# attribute -> the class both families name it by
CLASSES = {"users": "UserRepository", "categories": "CategoryRepository", "products": "ProductRepository",
           "carts": "ShoppingCartRepository", "orders": "OrderRepository"}


@dataclass
class Repositories:
    users: object
    categories: object
    products: object
    carts: object
    orders: object

    @classmethod
    def mysql(cls, db) -> "Repositories":
        from . import mysql
        return cls(**{attr: getattr(mysql, name)(db) for attr, name in CLASSES.items()})

    @classmethod
    def dynamodb(cls, dynamo) -> "Repositories":
        from . import dynamodb
        ids = dynamodb.IdAllocator(dynamo)
        return cls(**{attr: getattr(dynamodb, name)(dynamo, ids) for attr, name in CLASSES.items()})

    def __iter__(self):
        return ((f.name, getattr(self, f.name)) for f in fields(self))
