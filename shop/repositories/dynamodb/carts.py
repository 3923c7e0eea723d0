"""Cart lines live in the user's partition (PK USER#id, SK CART#product): one Query reads a cart."""
from __future__ import annotations

from botocore.exceptions import ClientError

from ...domain import CartItem
from ...errors import NotFoundError
from . import keys
from .catalog_items import products_by_id, with_details
from .client import cancellation_codes, condition_failed, encode, exists_check, iso, parse_iso, utcnow


def to_line(item: dict, product) -> CartItem:
    return CartItem(id=int(item["id"]), user_id=int(item["user_id"]), product_id=int(item["product_id"]),
                    quantity=int(item["quantity"]), created_at=parse_iso(item["created_at"]),
                    updated_at=parse_iso(item["updated_at"]), product=product)


class ShoppingCartRepository:
    def __init__(self, dynamo, ids):
        self.dynamo = dynamo
        self.ids = ids
        self.table = dynamo.table("users")

    def _lines(self, user_id: int) -> list[dict]:
        return self.dynamo.query_all(TableName=self.table, ConsistentRead=True,
                                     KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
                                     ExpressionAttributeValues=encode({":pk": f"USER#{user_id}", ":sk": "CART#"}))

    def list_items(self, user_id: int) -> list[CartItem]:
        """Most recently added first; lines whose product is gone are left out."""
        lines = self._lines(user_id)
        products = products_by_id(self.dynamo, [int(line["product_id"]) for line in lines])
        items = [to_line(line, products[int(line["product_id"])]) for line in lines
                 if int(line["product_id"]) in products]
        return sorted(items, key=lambda i: (i.created_at, i.id), reverse=True)

    def get_item(self, user_id: int, product_id: int) -> CartItem | None:
        """The line and its product in one BatchGetItem (strongly consistent, both tables)."""
        catalog = self.dynamo.table("catalog")
        found = self.dynamo.batch_get_tables({self.table: [keys.cart_line(user_id, product_id)],
                                              catalog: [keys.product(product_id)]})
        if not found[self.table] or not found[catalog]:
            return None
        return to_line(found[self.table][0], with_details(self.dynamo, found[catalog])[0])

    def add_item(self, user_id: int, product_id: int, quantity: int, *, mirror_of: CartItem | None = None) -> CartItem:
        """Add to the line, creating it if needed. A mirrored write sets the line as MySQL has it."""
        key = keys.cart_line(user_id, product_id)
        now = iso(mirror_of.updated_at if mirror_of else utcnow())
        if mirror_of is not None:
            line_id = mirror_of.id
        else:  # the line's id if it exists, else a new one
            existing = self.dynamo.get(self.table, key)
            line_id = existing["id"] if existing else self.ids.allocate("cart")[0]
        values = {":id": int(line_id), ":u": user_id, ":p": product_id, ":now": now, ":e": "CART",
                  ":g1": f"PRODUCT#{product_id}", ":g2": f"USER#{user_id}",
                  # Mirrored: the quantity MySQL ended with, not the amount this request added.
                  ":q": mirror_of.quantity if mirror_of else quantity,
                  ":created": iso(mirror_of.created_at) if mirror_of else now}
        quantity_clause = "SET quantity = :q, " if mirror_of else "ADD quantity :q SET "
        update = {"TableName": self.table, "Key": encode(key),
                  "UpdateExpression": quantity_clause + "id = if_not_exists(id, :id), user_id = :u, "
                                      "product_id = :p, created_at = if_not_exists(created_at, :created), "
                                      "updated_at = :now, entity = :e, GSI1PK = :g1, GSI1SK = :g2",
                  "ExpressionAttributeValues": encode(values)}
        try:
            self.dynamo.transact([
                {"Update": update},
                exists_check(self.dynamo.table("catalog"), keys.product(product_id)),
            ])
        except ClientError as exc:
            if cancellation_codes(exc)[1:] == ["ConditionalCheckFailed"]:
                raise NotFoundError("Referenced record does not exist") from exc
            raise
        return self.get_item(user_id, product_id)

    def set_quantity(self, user_id: int, product_id: int, quantity: int, *,
                     mirror_of: CartItem | None = None) -> CartItem | None:
        if mirror_of is not None:  # the line as MySQL has it, created here if it was missing
            return self.add_item(user_id, product_id, mirror_of.quantity, mirror_of=mirror_of)
        try:
            self.dynamo.call("update_item", TableName=self.table, Key=encode(keys.cart_line(user_id, product_id)),
                             UpdateExpression="SET quantity = :q, updated_at = :now",
                             ConditionExpression="attribute_exists(PK)",
                             ExpressionAttributeValues=encode({":q": quantity, ":now": iso(utcnow())}))
        except ClientError as exc:
            if condition_failed(exc):
                return None
            raise
        return self.get_item(user_id, product_id)

    def remove_item(self, user_id: int, product_id: int) -> bool:
        r = self.dynamo.call("delete_item", TableName=self.table, Key=encode(keys.cart_line(user_id, product_id)),
                             ReturnValues="ALL_OLD")
        return bool(r.get("Attributes"))

    def clear(self, user_id: int) -> int:
        lines = self._lines(user_id)
        self.dynamo.batch_delete(self.table, [{"PK": line["PK"], "SK": line["SK"]} for line in lines])
        return len(lines)
