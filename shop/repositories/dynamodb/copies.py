"""The names items copy from others, and the writes that keep the copies right.

A product item copies its category's name and its seller's username and email (`NAME_COPIES`): a
category rename and an email change rewrite them in every product concerned (`rewrite_copies`).
An order copies what it shows of its products (`SHOWN`), as described below.

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
  round once more if what it shows moved meanwhile, so the last writer's names win;
- a copy into DynamoDB (backfill, repair) writes an order's ORDER_LINE items before the order,
  then settles its copies against the product items as they are after the write (`settle`).
A fan-out runs after the product's own write. So that one cut short (a failed request, a killed
worker) is not forgotten, the write that starts it leaves a token on the product item
(`copies_pending`), which the fan-out removes once every order holds the copy; the product's
next write sees a token left and fans out again, whatever it changes, and a repair of the
product always fans out. An order written before the copies existed has no `products` map: it
is joined at read time (one BatchGetItem), and the fan-out leaves it alone (its condition fails).
"""
from __future__ import annotations

import logging
import time
import uuid

from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from ...domain import Order, OrderedProduct
from ...errors import ConflictError
from . import keys
from .catalog_items import with_details
from .client import condition_failed, encode, holds

NAME_COPIES = ("category_name", "seller_username", "seller_email")  # what a product item copies
SHOWN = ("name", "description", "category_name", "seller_id", "seller_username")  # what an order copies
LINE_ENTITY = "ORDER_LINE"
PENDING = "copies_pending"  # on a product item: a fan-out of what it shows is not known done
_SETTLE_SECONDS = 10  # a fan-out chasing a product renamed again and again gives up after this
FAN_OUT_THREADS = 8
_ROUNDS = 8  # fan-outs of one owner, each after it changed again meanwhile
log = logging.getLogger("shop.copies")


def after_commit(what: str, fan_out, *args, **kwargs) -> None:
    """Run a fan-out that follows a committed write. Its failure is not the write's: the write
    is saved, and telling its caller otherwise (a 503 "nothing changed", a dual write recorded
    as failed) would be false. The item keeps its copies_pending token, so its next write, a
    repair or `repair`'s sweep of tokens finishes the fan-out; the failure is logged."""
    try:
        fan_out(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - logged, and left to the token
        log.warning("copies fan-out left pending", extra={"event": "copies_pending", "what": what,
                                                          "error": f"{type(exc).__name__}: {exc}"})


def pending_token() -> str:
    return uuid.uuid4().hex


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
    """The ORDER_LINE items of an order: one per product it holds (MySQL does not forbid two
    lines of one product, which would be one item here)."""
    return [{**keys.order_line(pid, order.id), "entity": LINE_ENTITY, "order_id": int(order.id), "product_id": pid}
            for pid in dict.fromkeys(int(i.product_id) for i in order.items)]


def still_shows(shown: dict) -> tuple[str, dict, dict]:
    """A condition (expression, names, values) that a product item still shows `shown`
    (its seller never changes: that would be another product)."""
    return holds(shown, [k for k in SHOWN if k != "seller_id"], "s")


def rewrite_order_copies(dynamo, product_id: int, token: str | None = None,
                         threads: int = FAN_OUT_THREADS) -> int:
    """Set the product's current shown fields in every order holding it; returns how many
    order items were rewritten (one UpdateItem each, `threads` in flight). Goes round again
    while the product moves under it, and clears `token` (the product's copies_pending) once
    done. Raises ConflictError if the product kept moving for _SETTLE_SECONDS: the token stays,
    so the product's next write, or its repair, goes on with it."""
    orders = dynamo.table("orders")
    # The orders first: one committed after this query copied what the product showed at its
    # commit, which is after the change that started this fan-out.
    lines = dynamo.query_all(TableName=orders, ConsistentRead=True, KeyConditionExpression="PK = :pk",
                             ProjectionExpression="order_id",
                             ExpressionAttributeValues=encode({":pk": keys.order_line(product_id, 0)["PK"]}))
    order_ids = sorted({int(line["order_id"]) for line in lines})
    shown = _showing(dynamo, product_id) if order_ids else None
    rewritten, deadline = 0, time.monotonic() + _SETTLE_SECONDS
    while shown is not None:
        values = encode({":copy": stored(shown)})
        rewritten += fan_out(lambda order_id: _set_copy(dynamo, orders, order_id, product_id, values),
                             order_ids, threads)
        now = _showing(dynamo, product_id)
        if now is None or now == shown:
            break
        if time.monotonic() > deadline:
            raise ConflictError(f"product {product_id} kept changing while its orders were updated; "
                                "its next write or a repair finishes them")
        shown = now
    if token is not None:
        clear_pending(dynamo, keys.product(product_id), token)
    return rewritten


def _set_copy(dynamo, orders: str, order_id: int, product_id: int, values: dict,
              condition: str = "attribute_exists(#ps.#p)") -> int:
    try:
        dynamo.call("update_item", TableName=orders, Key=encode(keys.order(order_id)),
                    UpdateExpression="SET #ps.#p = :copy", ConditionExpression=condition,
                    ExpressionAttributeNames={"#ps": "products", "#p": str(int(product_id))},
                    ExpressionAttributeValues=values)
        return 1
    except ClientError as exc:
        if not condition_failed(exc):  # an order from before the copies (joined when read), or gone
            raise
        return 0


def clear_pending(dynamo, key: dict, token: str, table: str = "catalog") -> None:
    """Remove an item's copies_pending if it is still this fan-out's (a later write's token
    is that write's fan-out to clear)."""
    try:
        dynamo.call("update_item", TableName=dynamo.table(table), Key=encode(key),
                    UpdateExpression="REMOVE #t", ConditionExpression="#t = :t",
                    ExpressionAttributeNames={"#t": PENDING}, ExpressionAttributeValues=encode({":t": token}))
    except ClientError as exc:
        if not condition_failed(exc):
            raise


def _showing(dynamo, product_id: int) -> dict | None:
    """What the product shows now (strongly consistent; an item from before the name copies
    joined), or None when it is gone."""
    item = dynamo.get(dynamo.table("catalog"), keys.product(product_id))
    return shown_from_product(with_details(dynamo, [item])[0]) if item else None


def settle(dynamo, orders: list[Order]) -> int:
    """After copying orders into DynamoDB from another store's read: set, in each, the copy of
    any product whose item shows something else now (a rename whose fan-out ran before the
    order item existed, or wrote the order the copy then overwrote). Each is set only while the
    order still holds the copy that was put, so a rename's own fan-out, newer, is never undone.
    Returns how many were set: one BatchGetItem of the products, one UpdateItem per difference."""
    held = {int(i.product_id) for o in orders for i in o.items if i.product is not None}
    if not held:
        return 0
    items = dynamo.batch_get(dynamo.table("catalog"), [keys.product(p) for p in sorted(held)])
    now = {p.id: shown_from_product(p) for p in with_details(dynamo, items)}
    table, fixed = dynamo.table("orders"), 0
    for o in orders:
        for i in o.items:
            pid = int(i.product_id)
            put = shown_from_product(i.product) if i.product is not None else None
            if put is not None and pid in now and put != now[pid]:
                fixed += _set_copy(dynamo, table, o.id, pid, encode({":copy": stored(now[pid]), ":put": stored(put)}),
                                   "#ps.#p = :put")
    return fixed


def rewrite_copies(dynamo, owner: str, owner_id: int, copies: dict, token: str | None = None) -> int:
    """After a category rename (owner "category") or a seller's email change (owner
    "seller"), set the new copies on every product the owner's index partition lists,
    each only while the product still belongs to that owner. Returns how many were
    rewritten: the fan-out is one UpdateItem per product (docs/performance.md). A
    category's name is also shown by the orders holding its products: a rename goes on
    to their copies (rewrite_order_copies), one product at a time. When done, the owner is read
    again: renamed (or re-emailed) meanwhile, the fan-out goes round with the new value, so
    of two racing changes the later one's stays. `token`, the owner's copies_pending, is
    cleared once all of it is done."""
    key, table = (keys.category(owner_id), "catalog") if owner == "category" else (keys.user(owner_id), "users")
    source = {"category": ("category_name", "name"), "seller": ("seller_email", "email")}[owner]
    done = 0
    for _ in range(_ROUNDS):
        done += _rewrite_once(dynamo, owner, owner_id, copies)
        item = dynamo.get(dynamo.table(table), key)
        if item is None or item.get(source[1]) == copies.get(source[0]):
            break
        copies = {**copies, source[0]: item.get(source[1])}
    else:  # not settled: the token stays, for the next write, a repair or `repair --copies`
        raise ConflictError(f"{owner} {owner_id} kept changing while its products were updated")
    if token is not None:
        clear_pending(dynamo, key, token, table)
    return done


def _rewrite_once(dynamo, owner: str, owner_id: int, copies: dict) -> int:
    index, pk = {"category": ("GSI2", f"CATEGORY#{owner_id}"), "seller": ("GSI1", f"SELLER#{owner_id}")}[owner]
    table = dynamo.table("catalog")
    products = dynamo.query_all(TableName=table, IndexName=index, KeyConditionExpression=f"{index}PK = :pk",
                                ProjectionExpression="PK, SK", ExpressionAttributeValues=encode({":pk": pk}))
    names = {f"#{k}": k for k in copies}
    names["#owner"] = f"{owner}_id"
    sets = ", ".join(f"#{k} = :{k}" for k, v in copies.items() if v is not None)
    removes = ", ".join(f"#{k}" for k, v in copies.items() if v is None)
    expression = (f"SET {sets}" if sets else "") + (f" REMOVE {removes}" if removes else "")
    values = encode({":owner": owner_id, **{f":{k}": v for k, v in copies.items() if v is not None}})

    def rewrite(product) -> int:
        try:
            r = dynamo.call("update_item", TableName=table, Key=encode({"PK": product["PK"], "SK": product["SK"]}),
                            UpdateExpression=expression.strip(), ConditionExpression="#owner = :owner",
                            ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                            ReturnValues="ALL_NEW" if owner == "category" else "NONE")
        except ClientError as exc:
            if not condition_failed(exc):  # moved to another category, or deleted, meanwhile
                raise
            return 0
        # Orders hold it only if a checkout counted it before this write (one after it copies the
        # new name): times_ordered as this write left it says whether there are orders to rewrite.
        if owner == "category" and int(r.get("Attributes", {}).get("times_ordered", {}).get("N", "0")):
            rewrite_order_copies(dynamo, int(product["PK"].split("#", 1)[1]), threads=1)  # on this pool's thread
        return 1
    return fan_out(rewrite, products)


def fan_out(write, targets: list, threads: int = FAN_OUT_THREADS) -> int:
    """Sum of write(t) over targets: independent single-item writes, several in flight at once
    (as many as the client's pool) when there are more than `threads` of them."""
    if threads <= 1 or len(targets) <= threads:
        return sum(map(write, targets))
    with ThreadPoolExecutor(threads, thread_name_prefix="copies") as pool:
        return sum(pool.map(write, targets))


def copies_unchanged(item: dict) -> tuple[str, dict, dict]:
    """A condition (with its names and values) that the item's name copies are still
    those read, so a put of a product read earlier never undoes a rename's fan-out."""
    return holds(item, NAME_COPIES, "c")


def finish_pending(dynamo) -> dict:
    """Finish every fan-out a token says was cut short (`flask repair --copies`): one scan of
    the catalog and users tables for items holding copies_pending, then each fan-out with that
    token, which it clears when done. Returns {kind: fan-outs finished}."""
    done = {"product": 0, "category": 0, "user": 0}
    for table in ("catalog", "users"):
        found = dynamo.scan_all(TableName=dynamo.table(table), FilterExpression="attribute_exists(#t)",
                                ProjectionExpression="entity, id, #n, email, #t",
                                ExpressionAttributeNames={"#t": PENDING, "#n": "name"})
        for item in found:
            kind, token = item.get("entity"), item[PENDING]
            if kind == "PRODUCT":
                rewrite_order_copies(dynamo, int(item["id"]), token)
                done["product"] += 1
            elif kind == "CATEGORY":
                rewrite_copies(dynamo, "category", int(item["id"]), {"category_name": item["name"]}, token)
                done["category"] += 1
            elif kind == "USER":
                rewrite_copies(dynamo, "seller", int(item["id"]), {"seller_email": item["email"]}, token)
                done["user"] += 1
    return done
