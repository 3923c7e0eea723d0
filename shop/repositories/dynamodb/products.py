"""Products in DynamoDB. Listings read one index partition per access pattern:
by seller (GSI1), by category and its children (GSI2), or everything (GSI3, sharded)."""
from __future__ import annotations

from decimal import Decimal

from botocore.exceptions import ClientError

from ...domain import NewProduct, Page, Product, ProductFilters, SellerStats
from ...errors import ConflictError, NotFoundError
from . import keys
from .catalog_items import with_details
from .categories import CategoryRepository
from .counters import IdTaken, create_with_free_id
from .client import (cancellation_codes, check_size, condition_failed, encode, exists_check, iso, money,
                     utcnow, value)
from .tables import PRODUCT_SHARDS

_UPDATABLE = ("name", "description", "category_id", "price", "inventory_quantity", "image_url")


def _as_new(p: Product) -> NewProduct:
    return NewProduct(category_id=p.category_id, name=p.name, price=p.price, inventory_quantity=p.inventory_quantity,
                      description=p.description, image_url=p.image_url)


def _index_keys(item: dict) -> dict:
    """Everything derived from the product's own fields: index keys and search text."""
    order = keys.newest(item["created_at"], item["id"])
    return {"GSI1PK": f"SELLER#{int(item['seller_id'])}", "GSI1SK": order,
            "GSI2PK": f"CATEGORY#{int(item['category_id'])}", "GSI2SK": order,
            "GSI3PK": keys.product_shard(item["id"]), "GSI3SK": order,
            "name_lower": item["name"].lower(), "description_lower": (item.get("description") or "").lower()}


class ProductRepository:
    def __init__(self, dynamo, ids):
        self.dynamo = dynamo
        self.ids = ids
        self.table = dynamo.table("catalog")

    def get_by_id(self, product_id: int) -> Product | None:
        item = self.dynamo.get(self.table, keys.product(product_id))
        return with_details(self.dynamo, [item])[0] if item else None

    def list_products(self, filters: ProductFilters, page: int = 1, limit: int = 20) -> Page:
        """Newest first. Reads every match to count them: cost grows with the partition
        (docs/data-model.md); the API's page numbers need the total."""
        conditions, values = [], {}
        if filters.seller_id is not None:
            partitions = [("GSI1", "GSI1PK", f"SELLER#{filters.seller_id}")]
            if filters.category_id is not None:
                ids = self._category_and_children(filters.category_id)
                conditions.append("category_id IN (" + ", ".join(f":c{i}" for i in range(len(ids))) + ")")
                values.update({f":c{i}": c for i, c in enumerate(ids)})
        elif filters.category_id is not None:
            partitions = [("GSI2", "GSI2PK", f"CATEGORY#{c}") for c in self._category_and_children(filters.category_id)]
        else:
            partitions = [("GSI3", "GSI3PK", f"PRODUCTS#{n}") for n in range(PRODUCT_SHARDS)]
        if filters.search:
            conditions.append("(contains(name_lower, :q) OR contains(description_lower, :q))")
            values[":q"] = filters.search.lower()
        if filters.min_price is not None:
            conditions.append("price >= :minp")
            values[":minp"] = Decimal(filters.min_price)
        if filters.max_price is not None:
            conditions.append("price <= :maxp")
            values[":maxp"] = Decimal(filters.max_price)
        if filters.in_stock_only:
            conditions.append("inventory_quantity > :zero")
            values[":zero"] = 0
        found: dict[int, dict] = {}
        for index, pk_name, pk in partitions:
            kwargs = dict(TableName=self.table, IndexName=index, KeyConditionExpression=f"{pk_name} = :pk",
                          ExpressionAttributeValues=encode({**values, ":pk": pk}))
            if conditions:
                kwargs["FilterExpression"] = " AND ".join(conditions)
            for item in self.dynamo.query_all(**kwargs):
                found[int(item["id"])] = item
        ordered = sorted(found.values(), key=lambda i: (i["created_at"], int(i["id"])), reverse=True)
        chosen = ordered[(page - 1) * limit: page * limit]
        return Page(items=with_details(self.dynamo, chosen), total=len(ordered), page=page, limit=limit)

    def _category_and_children(self, category_id: int) -> list[int]:
        children = CategoryRepository(self.dynamo, self.ids).list_children(category_id)
        return [category_id] + [c.id for c in children]

    def create(self, seller_id: int, new: NewProduct, *, mirror_of: Product | None = None) -> Product:
        return create_with_free_id(lambda: self._create(seller_id, new, mirror_of), "product", mirror_of,
                                   ConflictError)

    def _create(self, seller_id: int, new: NewProduct, mirror_of: Product | None) -> Product:
        if mirror_of is not None:  # MySQL's resulting row, not the request
            seller_id, new = mirror_of.seller_id, _as_new(mirror_of)
        product_id = self.ids.ensure_id("product", mirror_of.id if mirror_of else None)
        created = mirror_of.created_at if mirror_of else utcnow()
        item = {**keys.product(product_id), "entity": "PRODUCT", "id": product_id, "seller_id": seller_id,
                "category_id": new.category_id, "name": new.name, "description": new.description,
                "price": money(new.price), "inventory_quantity": new.inventory_quantity,
                "image_url": new.image_url, "created_at": iso(created),
                "updated_at": iso(mirror_of.updated_at if mirror_of else created)}
        item.update(_index_keys(item))
        check_size(encode(item), "product")
        try:
            self.dynamo.transact([
                {"Put": {"TableName": self.table, "Item": encode(item),
                         "ConditionExpression": "attribute_not_exists(PK)"}},
                exists_check(self.table, keys.category(new.category_id)),
            ])
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes[1:] == ["ConditionalCheckFailed"]:
                raise NotFoundError("Category not found") from exc
            if codes[:1] == ["ConditionalCheckFailed"]:
                raise IdTaken(product_id) from exc
            raise
        return self.get_by_id(product_id)

    def update(self, product_id: int, changes: dict, *, mirror_of: Product | None = None) -> Product | None:
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if mirror_of is not None:  # MySQL's resulting row, whatever the request changed
            changes = {k: getattr(mirror_of, k) for k in _UPDATABLE}
        current = self.dynamo.get(self.table, keys.product(product_id))
        if current is None:
            return None
        merged = {**current, **{k: (money(v) if k == "price" else v) for k, v in changes.items()}}
        merged["updated_at"] = iso(mirror_of.updated_at if mirror_of else utcnow())
        merged.update(_index_keys(merged))
        merged = {k: v for k, v in merged.items() if v is not None}
        check_size(encode(merged), "product")
        actions = [{"Put": {"TableName": self.table, "Item": encode(merged),
                            # Unchanged since read: a concurrent checkout's decrement is never lost.
                            "ConditionExpression": "updated_at = :u AND inventory_quantity = :q",
                            "ExpressionAttributeValues": encode({":u": current["updated_at"],
                                                                 ":q": current["inventory_quantity"]})}}]
        if "category_id" in changes:
            actions.append(exists_check(self.table, keys.category(changes["category_id"])))
        try:
            self.dynamo.transact(actions)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes[1:] == ["ConditionalCheckFailed"]:
                raise NotFoundError("Category not found") from exc
            if codes[:1] == ["ConditionalCheckFailed"]:
                return self.update(product_id, changes, mirror_of=mirror_of)  # raced: apply to the new state
            raise
        return self.get_by_id(product_id)

    def set_inventory(self, product_id: int, quantity: int, *, mirror_of: Product | None = None) -> Product | None:
        if mirror_of is not None:
            quantity = mirror_of.inventory_quantity
        return self.update(product_id, {"inventory_quantity": quantity}, mirror_of=mirror_of)

    def delete(self, product_id: int) -> bool:
        """Delete a product never ordered, then the cart lines that held it."""
        try:
            self.dynamo.call("delete_item", TableName=self.table, Key=encode(keys.product(product_id)),
                             ConditionExpression="attribute_exists(PK) AND "
                                                 "(attribute_not_exists(times_ordered) OR times_ordered = :zero)",
                             ExpressionAttributeValues={":zero": value(0)})
        except ClientError as exc:
            if not condition_failed(exc):
                raise
            if self.dynamo.get(self.table, keys.product(product_id)) is None:
                return False
            raise ConflictError("Product has been ordered and cannot be deleted; set its inventory to 0 instead") from exc
        users = self.dynamo.table("users")
        lines = self.dynamo.query_all(TableName=users, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk",
                                      ExpressionAttributeValues=encode({":pk": f"PRODUCT#{product_id}"}))
        self.dynamo.batch_delete(users, [{"PK": line["PK"], "SK": line["SK"]} for line in lines])
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


