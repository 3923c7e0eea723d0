"""Products: one item each, with the names it shows copied in, a marker of the listing
counters that count it, and the count of orders holding it (`times_ordered`, DynamoDB's own
foreign key). A product whose seller differs between the stores under one id is an id collision."""
from __future__ import annotations

from collections import Counter

from botocore.exceptions import ClientError

from ...domain import NewProduct
from ...repositories.dynamodb import keys, listing_counts
from ...repositories.dynamodb.catalog_items import with_details
from ...repositories.dynamodb.client import cancellation_codes, encode
from ...repositories.dynamodb.copies import (NAME_COPIES, PENDING, pending_token, rewrite_order_copies,
                                             shown_from_item, shown_from_product)
from ...repositories.dynamodb.products import _as_new, product_item
from ...repositories.mysql import _rows
from ...text import fold
from ..copying import COPIED, DELETED, LEFT, ABSENT, Plan, differences, marks, newer_wins
from ..directions import TO_DYNAMODB
from .base import Entity

UPSERT = (
    "INSERT INTO products (id, seller_id, category_id, name, description, price, inventory_quantity,"
    " image_url, created_at, updated_at, name_fold, description_fold, version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
    + newer_wins(("category_id", "name", "description", "price", "inventory_quantity", "image_url", "updated_at",
                  "name_fold", "description_fold")))
TRANSACT_ACTIONS = 100  # TransactWriteItems' limit


def row(p) -> tuple:
    return (p.id, p.seller_id, p.category_id, p.name, p.description, p.price, p.inventory_quantity, p.image_url,
            p.created_at, p.updated_at, fold(p.name), fold(p.description or ""), p.version or 1)


def _times_ordered(db, product_ids) -> dict[int, int]:
    """How many order lines MySQL has of each product (DynamoDB's times_ordered)."""
    if not product_ids:
        return {}
    with db.cursor() as cur:
        cur.execute(f"SELECT product_id, COUNT(*) AS n FROM order_items WHERE product_id IN"
                    f" ({marks(product_ids)}) GROUP BY product_id", sorted(product_ids))
        return {r["product_id"]: r["n"] for r in cur.fetchall()}


class Products(Entity):
    name, repository, repos_attr, key = "product", "ProductRepository", "products", "product_id"
    mysql_table, ddb_table, ddb_kind = "products", "catalog", "PRODUCT"
    counters = (("product", "products"),)
    parents = ("user", "category")
    blind_first_copy = True  # no guard decides a product's copy: a first copy writes without reading

    def read(self, repos, entity_id):
        return repos.products.get_by_id(entity_id)

    def load_mysql(self, db, repos, ids):
        with db.cursor() as cur:
            cur.execute(f"{_rows.PRODUCT_SELECT} WHERE p.id IN ({marks(ids)})", ids)
            return {r["id"]: _rows.product(r) for r in cur.fetchall()}

    def load_dynamodb(self, dynamo, repos, ids):
        found = dynamo.batch_get(dynamo.table("catalog"), [keys.product(i) for i in ids])
        return {p.id: p for p in with_details(dynamo, found)}

    # --- one ----------------------------------------------------------------------------------

    def to_dynamodb(self, copier, product_id, deleted):
        source = copier.mysql.products.get_by_id(product_id)
        if source is None:
            if copier.ddb.products.get_by_id(product_id) is None:
                return ABSENT
            if not deleted:
                return LEFT
            copier.ddb.products.delete(product_id)  # uncounted from the listings, cart lines dropped
            return DELETED
        if copier.ddb.categories.get_by_id(source.category_id) is None:
            copier.copy(TO_DYNAMODB, "category", source.category_id)
        dynamo, catalog = copier.dynamo, copier.dynamo.table("catalog")
        was = dynamo.get(catalog, keys.product(product_id))
        dynamo.call("delete_item", TableName=catalog, Key=encode(keys.product(product_id)))
        copier.ddb.products.create(source.seller_id, NewProduct(
            category_id=source.category_id, name=source.name, price=source.price,
            inventory_quantity=source.inventory_quantity, description=source.description,
            image_url=source.image_url), mirror_of=source)
        ordered = _times_ordered(copier.db, [product_id]).get(product_id, 0)
        dynamo.call("update_item", TableName=catalog, Key=encode(keys.product(product_id)),
                    UpdateExpression="SET times_ordered = :n", ExpressionAttributeValues=encode({":n": ordered}))
        if ordered and (was is None or was.get(PENDING) or shown_from_item(was) != shown_from_product(source)):
            rewrite_order_copies(dynamo, product_id)  # a lost rename, or a fan-out cut short
        return COPIED

    def to_mysql(self, copier, product_id, deleted):
        p = copier.ddb.products.get_by_id(product_id)
        if p is None:
            return copier.reverse_gone("products", product_id, deleted)
        copier.check_owner("product", "products", "seller", p)
        copier.copy_parent("user", p.seller_id)
        copier.copy_parent("category", p.category_id)
        with copier.db.cursor(write=True) as cur:
            cur.execute(UPSERT, row(p))
        return COPIED

    # --- a page -------------------------------------------------------------------------------

    def plan_page(self, writer, source, current, blind=False) -> Plan:
        """Items that differ go by BatchWriteItem; products whose listing marker is not their
        membership (new, moved, or an item written before a stop without its marker) move
        the markers and counters in transactions of their own."""
        dynamo = writer.dynamo
        table = dynamo.table("catalog")
        ids = sorted(source)
        if not ids:
            return Plan()
        markers = {} if blind else {  # taken as absent: each marker write is conditioned on it
            int(m["PK"].removeprefix("PRODUCT#")): listing_counts.membership(m)
            for m in dynamo.batch_get(table, [keys.product_counted(i) for i in ids])}
        differing = {i for i in ids if differences(source[i], current.get(i))}
        ordered = _times_ordered(writer.db, differing)
        decided, items, moves, unchanged, fan_outs = {}, [], [], [], []
        for product_id in ids:
            p = source[product_id]
            member = {"category_id": int(p.category_id), "seller_id": int(p.seller_id)}
            if markers.get(product_id) != member:
                moves.append((product_id, markers.get(product_id), member))
            if product_id in differing:
                try:
                    item = product_item(product_id, p.seller_id, _as_new(p), p.created_at, p.updated_at,
                                        {k: getattr(p, k) for k in NAME_COPIES}, p.version)
                except Exception as exc:  # noqa: BLE001 - too large: reported, the rest copied
                    decided[product_id] = exc
                    moves = [m for m in moves if m[0] != product_id]
                    continue
                item["times_ordered"] = ordered.get(product_id, 0)
                if ordered.get(product_id) and current.get(product_id) is not None:
                    # DynamoDB's orders hold it and its item differed: a rename, or a fan-out
                    # cut short (whose token this put replaces). Its own token marks the
                    # fan-out that follows the put until it is done.
                    item[PENDING] = pending_token()
                    fan_outs.append((product_id, item[PENDING]))
                items.append((product_id, {"PutRequest": {"Item": encode(item)}}))
            elif markers.get(product_id) == member:
                unchanged.append(product_id)
        jobs = writer.puts(table, items) + [lambda group=g: _moved(writer, table, group) for g in _groups(moves)]
        # What the orders holding a product show of it: rewritten once its item is written.
        return Plan(decided, jobs, unchanged, then=[[lambda i=i, t=t: (rewrite_order_copies(dynamo, i, t), {})[1]
                                                      for i, t in fan_outs]])

    def write_page_to_mysql(self, writer, cur, found, decided):
        cur.execute(f"SELECT id, seller_id FROM products WHERE id IN ({marks(found)})", list(found))
        keep = writer.collide(found, decided, cur.fetchall(), "seller", "product")
        writer.parents("user", {p.seller_id for p in keep.values()})
        writer.parents("category", {p.category_id for p in keep.values()})
        if keep:
            cur.executemany(UPSERT, [row(p) for p in keep.values()])


def _groups(moves: list[tuple[int, dict | None, dict]]) -> list[list]:
    """(product id, marker before, membership after) packed into transactions of at most 100
    actions (1 per product, 1 per counter moved), sorted by category and seller so that a
    transaction moves few counters."""
    ordered = sorted(moves, key=lambda m: (m[2]["category_id"], m[2]["seller_id"], m[0]))
    groups, group, scopes = [], [], set()
    for move in ordered:
        mine = set(listing_counts.scopes(move[1])) | set(listing_counts.scopes(move[2]))
        if group and len(group) + 1 + len(scopes | mine) > TRANSACT_ACTIONS:
            groups.append(group)
            group, scopes = [], set()
        group.append(move)
        scopes |= mine
    return groups + ([group] if group else [])


def _moved(writer, table, group) -> dict[int, object]:
    """Markers (each conditioned on the marker as read) and the summed counter moves in one
    transaction, so a product the application creates meanwhile is never counted twice.
    A failed condition sends the group through the one-at-a-time copy, which reads again."""
    actions, delta = [], Counter()
    for product_id, before, after in group:
        actions.append(listing_counts.changes(table, product_id, before, after)[0])
        delta.update({s: -1 for s in listing_counts.scopes(before)})
        delta.update(listing_counts.scopes(after))
    actions += listing_counts.count_updates(table, delta)
    try:
        writer.dynamo.transact(actions)
    except ClientError as exc:
        if "ConditionalCheckFailed" not in cancellation_codes(exc):
            raise
        return writer.one_by_one("product", [m[0] for m in group])
    return {m[0]: COPIED for m in group}


PRODUCTS = Products()
