"""One row per repository method: read or write, its DynamoDB counterpart, how ids flow,
which lists promise no order, the key to log, and what a failed secondary write repairs.

Adding a repository method to the migration is adding a row here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

READ, WRITE = "read", "write"
# How MySQL's result reaches DynamoDB: MIRROR passes it as mirror_of= (DynamoDB copies it, ids and
# version included, and keeps it only over an older copy); SAME_ARGS passes nothing.
MIRROR, SAME_ARGS = "mirror", "same-args"
MODULE = "shop.repositories.mysql"


@dataclass(frozen=True)
class Route:
    repository: str
    method: str
    kind: str
    ids: str = SAME_ARGS
    counterpart: str | None = None            # DynamoDB method name; the same name when None
    key: tuple[str, ...] = ()                 # parameters that identify what was read or written
    unordered: frozenset = field(default_factory=frozenset)  # list paths compared as sets
    repairs: Callable | None = None           # (arguments, result) -> [(entity, id)]
    deletes: bool = False                     # removes its entity: a replay may delete it elsewhere
    joins: bool = False                       # returns records with their products joined in (compared apart)
    touches: Callable | None = None           # (arguments) -> [(entity, id or None for any)] a write relies on

    @property
    def name(self) -> str:
        return f"{self.repository}.{self.method}"

    @property
    def target(self) -> str:
        return self.counterpart or self.method


def _result_id(entity):
    return lambda args, result: [(entity, str(result.id))] if result is not None else []


def _arg(entity, name):
    return lambda args, result: [(entity, str(args[name]))]


def _cart(args, result):
    return [("cart", str(args["user_id"]))]


def _order_and_stock(args, result):
    if result is None:
        return [("order", str(args["order_id"]))] if "order_id" in args else []
    return ([("order", str(result.id))] + [("product", str(i.product_id)) for i in result.items]
            + ([("cart", str(result.user_id))] if "order_id" not in args else []))


def _checkout(args, result):
    return _order_and_stock(args, result) + [("cart", str(args["user_id"]))]


def _product_and_carts(args, result):
    return [("product", str(args["product_id"]))]


# What a write reads or changes in MySQL before its result is known: while MySQL lacks writes
# made to DynamoDB alone (after phase 5), a write touching one of these goes to DynamoDB first
# (router). None stands for any entity of the kind: a checkout's products are its cart's; a
# product's mirror carries its seller's and category's names as MySQL joins them; a profile's
# new email must be free among users MySQL does not have yet; a category's children decide
# whether it may be deleted.
_REFERENCES = (("user_id", "user"), ("seller_id", "user"), ("owner_id", "user"), ("product_id", "product"),
               ("category_id", "category"), ("parent_id", "category"), ("order_id", "order"))


def _touched(*kinds):
    def touches(args):
        found = [(entity, str(args[name])) for name, entity in _REFERENCES
                 if name in args and args[name] is not None]
        for holder in ("new", "changes"):  # a product's category, a category's parent
            value = args.get(holder)
            for name in ("category_id", "parent_id"):
                ref = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
                if ref is not None:
                    found.append(("category", str(ref)))
        if "user_id" in args and "order_id" not in args:
            found.append(("cart", str(args["user_id"])))
        return found + [(kind, None) for kind in kinds]
    return touches


DEFAULT_TOUCHES = _touched()

ROUTES = (
    Route("UserRepository", "get_by_id", READ, key=("user_id",)),
    Route("UserRepository", "get_by_username", READ, key=("username",)),
    Route("UserRepository", "get_by_email", READ, key=("email",)),
    Route("UserRepository", "create", WRITE, MIRROR, touches=_touched("user"), repairs=_result_id("user")),
    Route("UserRepository", "update_profile", WRITE, MIRROR, touches=_touched("user"), key=("user_id",), repairs=_arg("user", "user_id")),
    Route("UserRepository", "set_seller", WRITE, MIRROR, key=("user_id",), repairs=_arg("user", "user_id")),

    Route("CategoryRepository", "list_all", READ),
    Route("CategoryRepository", "get_by_id", READ, key=("category_id",)),
    Route("CategoryRepository", "get_by_name", READ, key=("name",)),
    Route("CategoryRepository", "list_roots", READ),
    Route("CategoryRepository", "list_children", READ, key=("parent_id",)),
    Route("CategoryRepository", "get_path", READ, key=("category_id",)),
    Route("CategoryRepository", "create", WRITE, MIRROR, touches=_touched("category"), repairs=_result_id("category")),
    Route("CategoryRepository", "update", WRITE, MIRROR, key=("category_id",),
          repairs=_arg("category", "category_id")),
    Route("CategoryRepository", "delete", WRITE, touches=_touched("product", "category"), key=("category_id",), repairs=_arg("category", "category_id"),
          deletes=True),

    Route("ProductRepository", "get_by_id", READ, key=("product_id",)),
    Route("ProductRepository", "list_products", READ, key=("filters", "page", "limit")),
    Route("ProductRepository", "create", WRITE, MIRROR, key=("seller_id",), repairs=_result_id("product")),
    Route("ProductRepository", "update", WRITE, MIRROR, touches=_touched("user", "category"), key=("product_id",), repairs=_arg("product", "product_id")),
    Route("ProductRepository", "set_inventory", WRITE, MIRROR, touches=_touched("user", "category"), key=("product_id",),
          repairs=_arg("product", "product_id")),
    Route("ProductRepository", "delete", WRITE, touches=_touched("cart"), key=("product_id",), repairs=_product_and_carts, deletes=True),
    Route("ProductRepository", "seller_stats", READ, key=("seller_id",)),

    Route("ShoppingCartRepository", "list_items", READ, key=("user_id",), joins=True),
    Route("ShoppingCartRepository", "get_item", READ, key=("user_id", "product_id"), joins=True),
    Route("ShoppingCartRepository", "add_item", WRITE, MIRROR, key=("user_id", "product_id"), repairs=_cart),
    Route("ShoppingCartRepository", "set_quantity", WRITE, MIRROR, key=("user_id", "product_id"), repairs=_cart),
    Route("ShoppingCartRepository", "remove_item", WRITE, MIRROR, key=("user_id", "product_id"), repairs=_cart),
    Route("ShoppingCartRepository", "clear", WRITE, MIRROR, key=("user_id",), repairs=_cart),

    Route("OrderRepository", "checkout", WRITE, MIRROR, touches=_touched("product"), key=("user_id",), unordered=frozenset({"items"}),
          repairs=_checkout),
    Route("OrderRepository", "get_by_id", READ, key=("order_id",), unordered=frozenset({"items"}), joins=True),
    Route("OrderRepository", "list_by_user", READ, key=("user_id", "page", "limit"),
          unordered=frozenset({"items.items"}), joins=True),
    Route("OrderRepository", "set_status", WRITE, MIRROR, touches=_touched("product"), key=("order_id",), unordered=frozenset({"items"}),
          repairs=_order_and_stock),
    Route("OrderRepository", "cancel", WRITE, MIRROR, touches=_touched("product"), key=("order_id",), unordered=frozenset({"items"}),
          repairs=_order_and_stock),
    Route("OrderRepository", "summary_by_user", READ, key=("user_id",)),
)
