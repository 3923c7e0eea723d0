"""Products in DynamoDB. Listings read one index partition per access pattern:
by seller (GSI1), by category and its children (GSI2), or everything (GSI3, sharded).
An unfiltered page reads about page x limit index entries and takes its total from the
counters kept with the writes (listing_counts); a filtered listing reads a bounded window."""
from __future__ import annotations

import heapq
import math
from decimal import Decimal
from itertools import islice

from botocore.exceptions import ClientError

from ...domain import NewProduct, Page, Product, ProductFilters, SellerStats
from ...errors import ConflictError, NotFoundError
from . import keys, listing_counts
from .catalog_items import name_copies, with_details
from .categories import CategoryRepository
from .counters import IdTaken, create_with_free_id
from .copies import PENDING, after_commit, copies_unchanged, pending_token, rewrite_order_copies, shown_from_item
from .client import (cancellation_codes, check_size, decode, encode, exists_check, held_version, holds, iso, money,
                     utcnow, value)
from .errors import Superseded
from ...text import fold
from .tables import PRODUCT_SHARDS

_UPDATABLE = ("name", "description", "category_id", "price", "inventory_quantity", "image_url")
_ATTEMPTS = 16  # re-reads after a concurrent change of what a write was conditioned on
_CCF = "ConditionalCheckFailed"


def _order(item: dict) -> str:
    return keys.newest(item["created_at"], item["id"])


def _as_new(p: Product) -> NewProduct:
    return NewProduct(category_id=p.category_id, name=p.name, price=p.price, inventory_quantity=p.inventory_quantity,
                      description=p.description, image_url=p.image_url)


def _index_keys(item: dict) -> dict:
    """Everything derived from the product's own fields: index keys and search text."""
    order = keys.newest(item["created_at"], item["id"])
    return {"GSI1PK": f"SELLER#{int(item['seller_id'])}", "GSI1SK": order,
            "GSI2PK": f"CATEGORY#{int(item['category_id'])}", "GSI2SK": order,
            "GSI3PK": keys.product_shard(item["id"]), "GSI3SK": order,
            # Folded as MySQL's name_fold and description_fold are: search means the same in both.
            "name_fold": fold(item["name"]), "description_fold": fold(item.get("description") or "")}


def product_item(product_id: int, seller_id: int, new: NewProduct, created, updated, copies: dict,
                 version: int = 1) -> dict:
    """The product's item with its name copies and index keys (checked against the size limit)."""
    item = {**keys.product(product_id), "entity": "PRODUCT", "id": product_id, "seller_id": seller_id,
            "category_id": new.category_id, "name": new.name, "description": new.description,
            "price": money(new.price), "inventory_quantity": new.inventory_quantity,
            "image_url": new.image_url, "created_at": iso(created), "updated_at": iso(updated), **copies,
            "version": int(version)}
    item.update(_index_keys(item))
    check_size(encode(item), "product")
    return item


class ProductRepository:
    def __init__(self, dynamo, ids):
        self.dynamo = dynamo
        self.ids = ids
        self.table = dynamo.table("catalog")
        self.users = dynamo.table("users")

    def get_by_id(self, product_id: int) -> Product | None:
        item = self.dynamo.get(self.table, keys.product(product_id))
        return with_details(self.dynamo, [item])[0] if item else None

    def list_products(self, filters: ProductFilters, page: int = 1, limit: int = 20) -> Page:
        """Newest first. A category filter includes its direct subcategories."""
        filtered = bool(filters.search or filters.min_price is not None or filters.max_price is not None
                        or filters.in_stock_only or (filters.seller_id is not None and filters.category_id is not None))
        if filters.seller_id is not None:
            partitions = [("GSI1", "GSI1PK", f"SELLER#{filters.seller_id}")]
            scopes = [f"SELLER#{filters.seller_id}"]
        elif filters.category_id is not None:
            ids = self._category_and_children(filters.category_id)
            partitions = [("GSI2", "GSI2PK", f"CATEGORY#{c}") for c in ids]
            scopes = [f"CATEGORY#{c}" for c in ids]
        else:
            partitions = [("GSI3", "GSI3PK", f"PRODUCTS#{n}") for n in range(PRODUCT_SHARDS)]
            scopes = ["PRODUCTS"]
        if filtered:
            return self._filtered(filters, partitions, page, limit)
        total = sum(listing_counts.totals(self.dynamo, scopes).values())
        offset = (page - 1) * limit
        if offset >= total or limit < 1:
            return Page(items=[], total=total, page=page, limit=limit)
        wanted = offset + limit
        # Shards share products evenly: each is asked for its part first, then more as the
        # merge consumes it. Items read per page stay near page x limit, whatever the catalog.
        chunk = wanted if len(partitions) == 1 else math.ceil(wanted / len(partitions) * 1.25) + 2
        newest = heapq.merge(*(self._newest(p, min(chunk, 1000)) for p in partitions), key=_order, reverse=True)
        chosen = list(islice(newest, offset, wanted))
        return Page(items=with_details(self.dynamo, chosen), total=total, page=page, limit=limit)

    def _newest(self, partition, chunk: int, conditions=(), values=None, budget: int | None = None):
        """One index partition newest first, `chunk` entries per request, lazily; with a
        budget, stops after reading that many entries (matching or not)."""
        index, pk_name, pk = partition
        kwargs = dict(TableName=self.table, IndexName=index, KeyConditionExpression=f"{pk_name} = :pk",
                      ScanIndexForward=False, ExpressionAttributeValues=encode({**(values or {}), ":pk": pk}))
        if conditions:
            kwargs["FilterExpression"] = " AND ".join(conditions)
        read = 0
        while budget is None or read < budget:
            kwargs["Limit"] = chunk if budget is None else min(chunk, budget - read)
            r = self.dynamo.call("query", **kwargs)
            read += r.get("ScannedCount", 0)
            yield from (decode(i) for i in r.get("Items", []))
            if not r.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = r["LastEvaluatedKey"]

    def _filtered(self, filters: ProductFilters, partitions, page: int, limit: int) -> Page:
        """Search, price and stock filters: DynamoDB cannot count matches without reading them,
        so this reads the newest DYNAMODB_FILTERED_READ_LIMIT index entries at most (shared by
        the partitions) and pages through the matches among them (docs/data-model.md)."""
        conditions, values = [], {}
        if filters.seller_id is not None and filters.category_id is not None:
            ids = self._category_and_children(filters.category_id)
            conditions.append("category_id IN (" + ", ".join(f":c{i}" for i in range(len(ids))) + ")")
            values.update({f":c{i}": c for i, c in enumerate(ids)})
        if filters.search:
            conditions.append("(contains(name_fold, :q) OR contains(description_fold, :q))")
            values[":q"] = fold(filters.search)
        if filters.min_price is not None:
            conditions.append("price >= :minp")
            values[":minp"] = Decimal(filters.min_price)
        if filters.max_price is not None:
            conditions.append("price <= :maxp")
            values[":maxp"] = Decimal(filters.max_price)
        if filters.in_stock_only:
            conditions.append("inventory_quantity > :zero")
            values[":zero"] = 0
        budget = math.ceil(self.dynamo.settings.dynamodb_filtered_read_limit / len(partitions))
        found = {int(i["id"]): i for p in partitions
                 for i in self._newest(p, min(budget, 1000), conditions, values, budget)}
        ordered = sorted(found.values(), key=_order, reverse=True)
        chosen = ordered[(page - 1) * limit: page * limit]
        return Page(items=with_details(self.dynamo, chosen), total=len(ordered), page=page, limit=limit)

    def _category_and_children(self, category_id: int) -> list[int]:
        children = CategoryRepository(self.dynamo, self.ids).list_children(category_id)
        return [category_id] + [c.id for c in children]

    def _read(self, product_id: int) -> tuple[dict | None, dict | None]:
        """The product item and the scopes counting it, in one strongly consistent Query."""
        items = self.dynamo.query_all(TableName=self.table, ConsistentRead=True, KeyConditionExpression="PK = :pk",
                                      ExpressionAttributeValues=encode({":pk": keys.product(product_id)["PK"]}))
        by_sk = {i["SK"]: i for i in items}
        return by_sk.get(keys.META), listing_counts.membership(by_sk.get(keys.product_counted(product_id)["SK"]))

    def _category_named(self, category: dict) -> dict:
        """A ConditionCheck: the category still exists under the name copied from it."""
        return {"ConditionCheck": {"TableName": self.table, "Key": encode(keys.category(int(category["id"]))),
                                   "ConditionExpression": "attribute_exists(PK) AND #n = :n",
                                   "ExpressionAttributeNames": {"#n": "name"},
                                   "ExpressionAttributeValues": encode({":n": category["name"]})}}

    def create(self, seller_id: int, new: NewProduct, *, mirror_of: Product | None = None) -> Product:
        return create_with_free_id(lambda: self._create(seller_id, new, mirror_of), "product", mirror_of,
                                   ConflictError)

    def _create(self, seller_id: int, new: NewProduct, mirror_of: Product | None) -> Product:
        if mirror_of is not None:  # MySQL's resulting row, not the request
            seller_id, new = mirror_of.seller_id, _as_new(mirror_of)
        product_id = self.ids.ensure_id("product", mirror_of.id if mirror_of else None)
        created = mirror_of.created_at if mirror_of else utcnow()
        for _ in range(_ATTEMPTS):
            wanted = {self.table: [keys.product_counted(product_id)]}
            if mirror_of is None:
                wanted[self.table].append(keys.category(new.category_id))
                wanted[self.users] = [keys.user(seller_id)]
            found = self.dynamo.batch_get_tables(wanted)
            by_entity = {i.get("entity"): i for i in found[self.table]}
            checks = []
            if mirror_of is not None:
                copies = {k: getattr(mirror_of, k) for k in ("category_name", "seller_username", "seller_email")}
                checks.append(exists_check(self.table, keys.category(new.category_id)))
            else:
                category = by_entity.get("CATEGORY")
                if category is None:
                    raise NotFoundError("Category not found")
                seller = (found[self.users] or [None])[0]
                copies = name_copies(category, seller)
                checks.append(self._category_named(category))
                if seller is not None:  # the email copied is still the seller's
                    checks.append({"ConditionCheck": {
                        "TableName": self.users, "Key": encode(keys.user(seller_id)),
                        "ConditionExpression": "email = :e", "ExpressionAttributeValues": encode({":e": seller["email"]})}})
            item = product_item(product_id, seller_id, new, created,
                                mirror_of.updated_at if mirror_of else created, copies,
                                mirror_of.version if mirror_of else 1)
            counted = listing_counts.membership(by_entity.get(listing_counts.MARKER_ENTITY))
            actions = [{"Put": {"TableName": self.table, "Item": encode(item),
                                "ConditionExpression": "attribute_not_exists(PK)"}}, *checks,
                       *listing_counts.changes(self.table, product_id, counted, listing_counts.membership(item))]
            try:
                self.dynamo.transact(actions)
            except ClientError as exc:
                codes = cancellation_codes(exc)
                if codes[:1] == [_CCF]:
                    raise IdTaken(product_id) from exc
                if codes[1:2] == [_CCF] and mirror_of is not None:
                    raise NotFoundError("Category not found") from exc
                if _CCF in codes:
                    continue  # renamed, re-emailed or recounted meanwhile: read again
                raise
            return with_details(self.dynamo, [item])[0]
        raise ConflictError("The product's category or seller kept changing while it was saved; try again")

    def update(self, product_id: int, changes: dict, *, mirror_of: Product | None = None) -> Product | None:
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if mirror_of is not None:  # MySQL's resulting row, whatever the request changed
            changes = {k: getattr(mirror_of, k) for k in _UPDATABLE}
        for _ in range(_ATTEMPTS):
            current, counted = self._read(product_id)
            if current is None:
                return None
            if mirror_of is not None and held_version(current) >= mirror_of.version:
                raise Superseded(f"product {product_id}", held_version(current), mirror_of.version)
            merged, checks = self._merged(current, changes, mirror_of)
            # What its orders show of it changed, or an earlier fan-out was cut short: this
            # write's token marks the fan-out to come until it has reached every order. Never
            # ordered (the put is conditioned on the stock read, which every checkout moves): none.
            token = pending_token() if int(current.get("times_ordered", 0)) and (
                shown_from_item(merged) != shown_from_item(current) or current.get(PENDING)) else None
            merged[PENDING] = token
            merged = {k: v for k, v in merged.items() if v is not None}
            check_size(encode(merged), "product")
            actions = [self._put_if_unchanged(current, merged), *checks]
            if counted is not None:
                actions += listing_counts.changes(self.table, product_id, counted, listing_counts.membership(merged))
            try:
                self.dynamo.transact(actions)
            except ClientError as exc:
                codes = cancellation_codes(exc)
                if codes[1:2] == [_CCF] and mirror_of is not None:
                    raise NotFoundError("Category not found") from exc
                if _CCF in codes:
                    continue  # raced: apply the change to the new state
                raise
            if token is not None:
                after_commit(f"product {product_id}", rewrite_order_copies, self.dynamo, product_id, token)
            return with_details(self.dynamo, [merged])[0]
        raise ConflictError("The product kept changing while it was updated; try again")

    def _merged(self, current: dict, changes: dict, mirror_of: Product | None) -> tuple[dict, list]:
        """The item after the change, and the checks its transaction makes of other items (the
        category it moves to exists; for our own write, still under the name copied)."""
        merged = {**current, **{k: (money(v) if k == "price" else v) for k, v in changes.items()}}
        merged["updated_at"] = iso(mirror_of.updated_at if mirror_of else utcnow())
        merged["version"] = mirror_of.version if mirror_of else held_version(current) + 1
        checks = []
        if mirror_of is not None:
            merged.update({k: getattr(mirror_of, k) for k in ("category_name", "seller_username", "seller_email")})
            if "category_id" in changes:
                checks.append(exists_check(self.table, keys.category(changes["category_id"])))
        elif "category_id" in changes:
            category = self.dynamo.get(self.table, keys.category(changes["category_id"]))
            if category is None:
                raise NotFoundError("Category not found")
            merged["category_name"] = category["name"]
            checks.append(self._category_named(category))
        merged.update(_index_keys(merged))
        return merged, checks

    def _put_if_unchanged(self, current: dict, merged: dict) -> dict:
        """The put, conditioned on the item as read: a concurrent checkout's decrement, or a
        rename's fan-out, is never lost; times_ordered too (a checkout and a cancel in between
        leave the stock as it was), and the version read, so a copy landing meanwhile is never
        overwritten by an older one."""
        same_copies, names, values = copies_unchanged(current)
        ordered, ordered_names, ordered_values = holds(current, ("times_ordered", "version"), "o")
        return {"Put": {"TableName": self.table, "Item": encode(merged),
                        "ConditionExpression": f"updated_at = :u AND inventory_quantity = :q AND {same_copies}"
                                               f" AND {ordered}",
                        "ExpressionAttributeNames": {**names, **ordered_names},
                        "ExpressionAttributeValues": encode({":u": current["updated_at"],
                                                             ":q": current["inventory_quantity"], **values,
                                                             **ordered_values})}}

    def set_inventory(self, product_id: int, quantity: int, *, mirror_of: Product | None = None) -> Product | None:
        if mirror_of is not None:
            quantity = mirror_of.inventory_quantity
        return self.update(product_id, {"inventory_quantity": quantity}, mirror_of=mirror_of)

    def delete(self, product_id: int) -> bool:
        """Delete a product never ordered (and uncount it), then the cart lines that held it."""
        for _ in range(_ATTEMPTS):
            current, counted = self._read(product_id)
            if current is None:
                return False
            if int(current.get("times_ordered", 0)):
                raise ConflictError("Product has been ordered and cannot be deleted; set its inventory to 0 instead")
            try:
                self.dynamo.transact([
                    {"Delete": {"TableName": self.table, "Key": encode(keys.product(product_id)),
                                "ConditionExpression": "attribute_exists(PK) AND "
                                                       "(attribute_not_exists(times_ordered) OR times_ordered = :zero)",
                                "ExpressionAttributeValues": {":zero": value(0)}}},
                    *listing_counts.changes(self.table, product_id, counted, None)])
            except ClientError as exc:
                if _CCF in cancellation_codes(exc):
                    continue  # ordered, deleted or recounted meanwhile: read again
                raise
            break
        else:
            raise ConflictError("The product kept changing while it was deleted; try again")
        lines = self.dynamo.query_all(TableName=self.users, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk",
                                      ExpressionAttributeValues=encode({":pk": f"PRODUCT#{product_id}"}))
        self.dynamo.batch_delete(self.users, [{"PK": line["PK"], "SK": line["SK"]} for line in lines])
        return True

    def seller_stats(self, seller_id: int) -> SellerStats:
        items = self.dynamo.query_all(TableName=self.table, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk",
                                      ProjectionExpression="inventory_quantity, price",
                                      ExpressionAttributeValues=encode({":pk": f"SELLER#{seller_id}"}))
        in_stock = [i for i in items if int(i["inventory_quantity"]) > 0]
        value_total = sum((Decimal(i["price"]) * int(i["inventory_quantity"]) for i in in_stock), Decimal(0))
        return SellerStats(total_products=len(items), in_stock_products=len(in_stock),
                           out_of_stock_products=len(items) - len(in_stock),
                           total_inventory_value=money(value_total))


