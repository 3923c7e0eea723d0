"""Product totals of the unfiltered listings, kept with the writes that change them.

DynamoDB has no COUNT(*): reading every match to count it makes a page's cost grow with the
catalog. Instead each listing scope (`PRODUCTS`, `CATEGORY#<id>`, `SELLER#<id>`) has a counter
item, moved inside the same transaction that creates, deletes or re-categorises a product.
Beside each product a marker item records which scopes count it, so a writer that deletes
and re-puts the product item (repair, backfill) moves the counters by the difference only,
never counting a product twice. `rebuild` recomputes everything from the products (after a
bulk load that bypassed the repositories).
"""
from __future__ import annotations

from collections import Counter

from . import keys
from .client import encode

ENTITY, MARKER_ENTITY = "COUNT", "PRODUCT_COUNTED"


def scopes(membership: dict | None) -> list[str]:
    if membership is None:
        return []
    return ["PRODUCTS", f"CATEGORY#{int(membership['category_id'])}", f"SELLER#{int(membership['seller_id'])}"]


def membership(item: dict | None) -> dict | None:
    return None if item is None else {"category_id": int(item["category_id"]), "seller_id": int(item["seller_id"])}


def changes(table: str, product_id: int, before: dict | None, after: dict | None) -> list[dict]:
    """TransactWriteItems actions moving a product from the scopes of `before` (its marker as
    read, or None) to those of `after` (None: no longer counted). The marker action comes first
    and fails the transaction if the marker changed since it was read."""
    if before == after:
        return []
    marker_key = encode(keys.product_counted(product_id))
    if before is None:
        guard = {"ConditionExpression": "attribute_not_exists(PK)"}
    else:
        guard = {"ConditionExpression": "category_id = :c AND seller_id = :s",
                 "ExpressionAttributeValues": encode({":c": before["category_id"], ":s": before["seller_id"]})}
    if after is None:
        actions = [{"Delete": {"TableName": table, "Key": marker_key, **guard}}]
    else:
        item = {**keys.product_counted(product_id), "entity": MARKER_ENTITY, **after}
        actions = [{"Put": {"TableName": table, "Item": encode(item), **guard}}]
    delta = Counter()
    for scope in scopes(before):
        delta[scope] -= 1
    for scope in scopes(after):
        delta[scope] += 1
    return actions + count_updates(table, delta)


def count_updates(table: str, delta: Counter) -> list[dict]:
    """TransactWriteItems actions moving each scope's counter by its delta (zeros left out)."""
    return [{"Update": {"TableName": table, "Key": encode(keys.listing_count(scope)),
                        "UpdateExpression": "ADD #n :d SET entity = :e",
                        "ExpressionAttributeNames": {"#n": "n"},
                        "ExpressionAttributeValues": encode({":d": n, ":e": ENTITY})}}
            for scope, n in sorted(delta.items()) if n]


def totals(dynamo, scope_names: list[str]) -> dict[str, int]:
    """The counters of these scopes, in one strongly consistent batched read."""
    items = dynamo.batch_get(dynamo.table("catalog"), [keys.listing_count(s) for s in scope_names])
    found = {item["PK"].removeprefix("COUNT#"): max(0, int(item.get("n", 0))) for item in items}
    return {s: found.get(s, 0) for s in scope_names}


def rebuild(dynamo) -> dict[str, int]:
    """Recount every scope from the product items and rewrite counters and markers.
    Run it with writes stopped (it reads, then writes: a product created between the two
    would be missed). Returns the totals written."""
    table = dynamo.table("catalog")
    counts: Counter = Counter()
    markers, stale = [], []
    for item in dynamo.scan_all(TableName=table, ProjectionExpression="PK, SK, entity, id, category_id, seller_id"):
        if item.get("entity") == "PRODUCT":
            member = membership(item)
            counts.update(scopes(member))
            markers.append({**keys.product_counted(int(item["id"])), "entity": MARKER_ENTITY, **member})
        elif item.get("entity") in (ENTITY, MARKER_ENTITY):
            stale.append({"PK": item["PK"], "SK": item["SK"]})
    dynamo.batch_delete(table, stale)
    dynamo.batch_put(table, markers + [{**keys.listing_count(s), "entity": ENTITY, "n": n} for s, n in counts.items()])
    return dict(counts)
