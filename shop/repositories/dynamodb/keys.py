"""Key templates: the only place that spells the keys (docs/data-model.md lists them)."""
from __future__ import annotations

from ...text import fold_key
from .tables import PRODUCT_SHARDS

META = "#META"
GUARD = "#GUARD"


def user(user_id: int) -> dict:
    return {"PK": f"USER#{user_id}", "SK": META}


def username_guard(username: str) -> dict:
    return {"PK": f"USERNAME#{username.lower()}", "SK": GUARD}


def email_guard(email: str) -> dict:
    return {"PK": f"EMAIL#{email.lower()}", "SK": GUARD}


def cart_line(user_id: int, product_id: int) -> dict:
    return {"PK": f"USER#{user_id}", "SK": f"CART#{int(product_id):010d}"}


def category_name(name: str) -> dict:
    """The guard that keeps category names unique as folded (shop/text.py), in the catalog table."""
    return {"PK": f"CATEGORYNAME#{fold_key(name)}", "SK": GUARD}


def category(category_id: int) -> dict:
    return {"PK": "CATEGORIES", "SK": f"CATEGORY#{int(category_id):010d}"}


def product(product_id: int) -> dict:
    return {"PK": f"PRODUCT#{product_id}", "SK": META}


def product_counted(product_id: int) -> dict:
    """Which listing totals a product is counted in (beside its item, so a copy that
    deletes and re-puts the product item does not count it twice)."""
    return {"PK": f"PRODUCT#{product_id}", "SK": "#COUNTED"}


def listing_count(scope: str) -> dict:
    """The product total of one listing: `PRODUCTS`, `CATEGORY#<id>` or `SELLER#<id>`."""
    return {"PK": f"COUNT#{scope}", "SK": "#COUNT"}


def product_shard(product_id: int) -> str:
    return f"PRODUCTS#{int(product_id) % PRODUCT_SHARDS}"


def order(order_id: int) -> dict:
    return {"PK": f"ORDER#{order_id}", "SK": META}


def order_line(product_id: int, order_id: int) -> dict:
    """An order holding a product, in the orders table under the product: what a rename's
    fan-out queries to find the orders whose copies of the product it must rewrite."""
    return {"PK": f"PRODUCT#{int(product_id)}", "SK": f"ORDER#{int(order_id):010d}"}


def newest(created_iso: str, entity_id: int) -> str:
    """A sort key ordering by time then id, as MySQL's ORDER BY created_at, id."""
    return f"{created_iso}#{int(entity_id):010d}"
