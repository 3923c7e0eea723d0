"""What an order shows of its products, copied into the order, and the writes that keep it right.

An order item holds, beside its lines, a map `products` of product id -> the fields the
storefront shows with a line (name, description, category name, seller id and username), so an
order is read with one GetItem. Each line also has an ORDER_LINE item under its product
(`PRODUCT#<id>` / `ORDER#<order id>`, in the orders table, written in the checkout's own
transaction): a change to what a product shows (its name or description, its category, its
category's name) queries them and rewrites the copy in every order holding the product.

Races, and why none leaves a stale copy (docs/data-model.md):
- a checkout copies the names from the product items it reads, and its stock update is
  conditioned on the product still showing them: a rename committed in between fails the
  transaction, which reads again;
- a checkout committed before a rename has its ORDER_LINE items already, so the rename's
  fan-out (which starts after the rename committed) finds it;
- two renames of one product racing: every fan-out ends by reading the product again and goes
  round once more if what it shows moved meanwhile, so the last writer's names win.
An order written before the copies existed has no `products` map: it is joined at read time
(one BatchGetItem), and the fan-out leaves it alone (its condition fails).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from ...domain import Order, OrderedProduct
from . import keys
from .catalog_items import with_details
from .client import condition_failed, encode, holds

SHOWN = ("name", "description", "category_name", "seller_id", "seller_username")
LINE_ENTITY = "ORDER_LINE"
FAN_OUT_THREADS = 8
_ROUNDS = 5  # fan-outs of one product, each after the product moved again meanwhile


def shown_from_item(item: dict) -> dict:
    """A product item's shown fields (None where it has none), as an order copies them."""
    return {k: (int(item[k]) if k == "seller_id" else item.get(k)) for k in SHOWN}


def shown_from_product(p) -> dict:
    """The same from a domain value (Product or OrderedProduct)."""
    return {k: getattr(p, k) for k in SHOWN}


def stored(shown: dict) -> dict:
    return {k: v for k, v in shown.items() if v is not None}


def to_ordered(product_id: int, copy: dict) -> OrderedProduct:
    return OrderedProduct(id=int(product_id), seller_id=int(copy["seller_id"]), name=copy["name"],
                          description=copy.get("description"), category_name=copy.get("category_name"),
                          seller_username=copy.get("seller_username"))


def copies_of(order: Order) -> dict | None:
    """The order item's `products` map, from the order's lines; None if any line has no
    product to copy (an order from a source that did not join them)."""
    if not order.items or any(i.product is None for i in order.items):
        return None
    return {str(int(i.product_id)): stored(shown_from_product(i.product)) for i in order.items}


def line_items(order: Order) -> list[dict]:
    """The ORDER_LINE items of an order: one per product it holds."""
    return [{**keys.order_line(i.product_id, order.id), "entity": LINE_ENTITY, "order_id": int(order.id),
             "product_id": int(i.product_id)} for i in order.items]


def still_shows(shown: dict) -> tuple[str, dict, dict]:
    """A condition (expression, names, values) that a product item still shows `shown`
    (its seller never changes: that would be another product)."""
    return holds(shown, [k for k in SHOWN if k != "seller_id"], "s")


def rewrite_order_copies(dynamo, product_id: int) -> int:
    """Set the product's current shown fields in every order holding it; returns how many
    order items were rewritten (one UpdateItem each, FAN_OUT_THREADS in flight). Goes round
    again while the product moves under it (see the module's docstring)."""
    orders = dynamo.table("orders")
    # The orders first: one committed after this query copied what the product showed at its
    # commit, which is after the change that started this fan-out.
    lines = dynamo.query_all(TableName=orders, ConsistentRead=True, KeyConditionExpression="PK = :pk",
                             ProjectionExpression="order_id",
                             ExpressionAttributeValues=encode({":pk": keys.order_line(product_id, 0)["PK"]}))
    order_ids = sorted({int(line["order_id"]) for line in lines})
    if not order_ids:
        return 0
    shown = _showing(dynamo, product_id)
    rewritten = 0
    for _ in range(_ROUNDS):
        if shown is None:
            return rewritten
        values = encode({":copy": stored(shown)})

        def rewrite(order_id: int) -> int:
            try:
                dynamo.call("update_item", TableName=orders, Key=encode(keys.order(order_id)),
                            UpdateExpression="SET #ps.#p = :copy", ConditionExpression="attribute_exists(#ps.#p)",
                            ExpressionAttributeNames={"#ps": "products", "#p": str(int(product_id))},
                            ExpressionAttributeValues=values)
                return 1
            except ClientError as exc:
                if not condition_failed(exc):  # an order from before the copies: joined when read
                    raise
                return 0
        if len(order_ids) <= FAN_OUT_THREADS:
            rewritten += sum(rewrite(o) for o in order_ids)
        else:
            with ThreadPoolExecutor(FAN_OUT_THREADS, thread_name_prefix="order-copies") as pool:
                rewritten += sum(pool.map(rewrite, order_ids))
        now = _showing(dynamo, product_id)
        if now is None or now == shown:
            return rewritten
        shown = now
    return rewritten


def _showing(dynamo, product_id: int) -> dict | None:
    """What the product shows now (strongly consistent; an item from before the name copies
    joined), or None when it is gone."""
    item = dynamo.get(dynamo.table("catalog"), keys.product(product_id))
    return shown_from_product(with_details(dynamo, [item])[0]) if item else None
