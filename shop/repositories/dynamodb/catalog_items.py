"""Turning catalog items into domain values, with the names the storefront shows.

A product item carries copies of its category's name and its seller's username and email
(`category_name`, `seller_username`, `seller_email`), so a product is one read. The copies
are kept right by the writes that change the originals: a category rename and a profile
update rewrite the copies of the products concerned (docs/data-model.md). An item written
before the copies existed is joined with one batched get, as it always was.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from ...domain import Category, Product
from . import keys
from .client import held_version, holds, parse_iso

NAME_COPIES = ("category_name", "seller_username", "seller_email")
FAN_OUT_THREADS = 8
_ROUNDS = 8  # fan-outs of one owner, each after it changed again meanwhile


def to_category(item: dict) -> Category:
    parent = item.get("parent_id")
    return Category(id=int(item["id"]), name=item["name"], parent_id=int(parent) if parent is not None else None,
                    created_at=parse_iso(item["created_at"]),
                    owner_id=int(item["owner_id"]) if item.get("owner_id") is not None else None,
                    version=held_version(item))


def to_product(item: dict) -> Product:
    return Product(
        id=int(item["id"]), seller_id=int(item["seller_id"]), category_id=int(item["category_id"]),
        name=item["name"], description=item.get("description"), price=Decimal(item["price"]).quantize(Decimal("0.01")),
        inventory_quantity=int(item["inventory_quantity"]), image_url=item.get("image_url"),
        created_at=parse_iso(item["created_at"]), updated_at=parse_iso(item["updated_at"]),
        category_name=item.get("category_name"), seller_username=item.get("seller_username"),
        seller_email=item.get("seller_email"), version=held_version(item))


def name_copies(category: dict | None, seller: dict | None) -> dict:
    """The copies a product item keeps, from its category's and its seller's items."""
    return {"category_name": category["name"] if category else None,
            "seller_username": seller["username"] if seller else None,
            "seller_email": seller["email"] if seller else None}


def with_details(dynamo, items: list[dict]) -> list[Product]:
    """Products from their items; only items without name copies cost a batched join."""
    bare = [i for i in items if "seller_username" not in i or "category_name" not in i]
    if bare:
        cats = dynamo.batch_get(dynamo.table("catalog"), [keys.category(int(i["category_id"])) for i in bare])
        users = dynamo.batch_get(dynamo.table("users"), [keys.user(int(i["seller_id"])) for i in bare])
        by_cat = {int(c["id"]): c for c in cats}
        by_user = {int(u["id"]): u for u in users}
        for i in bare:
            i.update(name_copies(by_cat.get(int(i["category_id"])), by_user.get(int(i["seller_id"]))))
    return [to_product(i) for i in items]


def products_by_id(dynamo, product_ids) -> dict[int, Product]:
    ids = list(product_ids)
    if not ids:
        return {}
    items = dynamo.batch_get(dynamo.table("catalog"), [keys.product(int(p)) for p in ids])
    return {p.id: p for p in with_details(dynamo, items)}


def rewrite_copies(dynamo, owner: str, owner_id: int, copies: dict, token: str | None = None) -> int:
    """After a category rename (owner "category") or a seller's email change (owner
    "seller"), set the new copies on every product the owner's index partition lists,
    each only while the product still belongs to that owner. Returns how many were
    rewritten: the fan-out is one UpdateItem per product (docs/performance.md). A
    category's name is also shown by the orders holding its products: a rename goes on
    to their copies (order_copies), one product at a time. When done, the owner is read
    again: renamed (or re-emailed) meanwhile, the fan-out goes round with the new value, so
    of two racing changes the later one's stays. `token`, the owner's copies_pending, is
    cleared once all of it is done."""
    from ...errors import ConflictError
    from .order_copies import clear_pending

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
    from botocore.exceptions import ClientError

    from .client import condition_failed, encode
    from .order_copies import rewrite_order_copies

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
