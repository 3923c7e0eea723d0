"""Cart lines live in the user's partition (PK USER#id, SK CART#product): one Query reads a cart."""
from __future__ import annotations

from botocore.exceptions import ClientError

from ...domain import CartItem
from ...errors import InsufficientInventoryError, NotFoundError
from . import keys
from .catalog_items import products_by_id, with_details
from .client import (cancellation_codes, condition_failed, encode, exists_check, held_version, iso, next_version,
                     parse_iso, utcnow)
from .errors import Diverged, Superseded


def to_line(item: dict, product) -> CartItem:
    return CartItem(id=int(item["id"]), user_id=int(item["user_id"]), product_id=int(item["product_id"]),
                    quantity=int(item["quantity"]), created_at=parse_iso(item["created_at"]),
                    updated_at=parse_iso(item["updated_at"]), product=product, version=held_version(item))


def line_item(line: CartItem) -> dict:
    """A cart line's item, as a copy from another store writes it whole (backfill, repair)."""
    return {**keys.cart_line(line.user_id, line.product_id), "entity": "CART", "id": int(line.id),
            "user_id": int(line.user_id), "product_id": int(line.product_id), "quantity": int(line.quantity),
            "created_at": iso(line.created_at), "updated_at": iso(line.updated_at), "version": int(line.version or 1),
            "GSI1PK": f"PRODUCT#{int(line.product_id)}", "GSI1SK": f"USER#{int(line.user_id)}"}


# A line is ordered by (its id, its version): removing a product and adding it again makes a new
# line in MySQL with a larger id, and each change of one line bumps its version.
_NEWER_LINE = "(id < :id OR (id = :id AND (attribute_not_exists(#ver) OR #ver < :v)))"


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

    def add_item(self, user_id: int, product_id: int, quantity: int, limit: int | None = None, *,
                 mirror_of: CartItem | None = None) -> CartItem | None:
        """Add to the line, creating it if needed; with `limit`, refused when the line would hold
        more (a condition on the line: parallel adds cannot pass it together). A mirrored write
        sets the line as MySQL has it, if newer than DynamoDB's (Superseded otherwise); a line
        MySQL changed but did not create (version > 1) is never created here (None: DynamoDB
        lacks it), or a copy arriving after the line's removal would bring it back."""
        key = keys.cart_line(user_id, product_id)
        now = iso(mirror_of.updated_at if mirror_of else utcnow())
        values = {":u": user_id, ":p": product_id, ":now": now, ":e": "CART",
                  ":g1": f"PRODUCT#{product_id}", ":g2": f"USER#{user_id}"}
        names = {}
        if mirror_of is not None:  # the quantity MySQL ended with, not the amount this request added
            values.update({":id": int(mirror_of.id), ":q": mirror_of.quantity, ":v": mirror_of.version,
                           ":created": iso(mirror_of.created_at)})
            expression = "SET quantity = :q, id = :id, #ver = :v, created_at = :created"
            names = {"#ver": "version"}
            condition = (f"attribute_not_exists(PK) OR {_NEWER_LINE}" if mirror_of.version <= 1
                         else f"attribute_exists(PK) AND {_NEWER_LINE}")
        else:  # the line's id if it exists, else a new one
            existing = self.dynamo.get(self.table, key)
            bump, names, bump_values = next_version()
            values.update({":id": int(existing["id"]) if existing else self.ids.allocate("cart")[0], ":q": quantity,
                           ":created": now, **bump_values})
            expression = f"ADD quantity :q SET {bump}, id = if_not_exists(id, :id), created_at = if_not_exists(created_at, :created)"
            condition = None
            if limit is not None:
                condition, values[":room"] = "attribute_not_exists(quantity) OR quantity <= :room", limit - quantity
        update = {"TableName": self.table, "Key": encode(key),
                  "UpdateExpression": expression + ", user_id = :u, product_id = :p, updated_at = :now, entity = :e,"
                                                   " GSI1PK = :g1, GSI1SK = :g2",
                  "ExpressionAttributeValues": encode(values)}
        if condition:
            update["ConditionExpression"] = condition
        if names:
            update["ExpressionAttributeNames"] = names
        try:
            self.dynamo.transact([
                {"Update": update},
                exists_check(self.dynamo.table("catalog"), keys.product(product_id)),
            ])
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes[1:] == ["ConditionalCheckFailed"]:
                raise NotFoundError("Referenced record does not exist") from exc
            if codes[:1] != ["ConditionalCheckFailed"]:
                raise
            if mirror_of is None:
                raise InsufficientInventoryError(f"Quantity cannot exceed {limit} items per product") from exc
            held = self.dynamo.get(self.table, key)
            if held is None:
                return None
            raise Superseded(f"cart line {user_id}/{product_id}", (int(held["id"]), held_version(held)),
                             (mirror_of.id, mirror_of.version)) from exc
        return self.get_item(user_id, product_id)

    def set_quantity(self, user_id: int, product_id: int, quantity: int, *,
                     mirror_of: CartItem | None = None) -> CartItem | None:
        if mirror_of is not None:  # the line as MySQL has it, if newer
            return self.add_item(user_id, product_id, mirror_of.quantity, mirror_of=mirror_of)
        bump, names, values = next_version()
        try:
            self.dynamo.call("update_item", TableName=self.table, Key=encode(keys.cart_line(user_id, product_id)),
                             UpdateExpression=f"SET quantity = :q, updated_at = :now, {bump}",
                             ConditionExpression="attribute_exists(PK)", ExpressionAttributeNames=names,
                             ExpressionAttributeValues=encode({":q": quantity, ":now": iso(utcnow()), **values}))
        except ClientError as exc:
            if condition_failed(exc):
                return None
            raise
        return self.get_item(user_id, product_id)

    def remove_item(self, user_id: int, product_id: int, *, mirror_of: bool | None = None) -> bool:
        """Mirrored (`mirror_of`: whether MySQL removed a line): a line MySQL removed that DynamoDB
        did not hold is Diverged, since a copy of it may still be on its way."""
        r = self.dynamo.call("delete_item", TableName=self.table, Key=encode(keys.cart_line(user_id, product_id)),
                             ReturnValues="ALL_OLD")
        removed = bool(r.get("Attributes"))
        if mirror_of and not removed:
            raise Diverged([("cart", str(user_id))], "MySQL removed a cart line DynamoDB did not hold")
        return removed

    def clear(self, user_id: int, *, mirror_of: int | None = None) -> int:
        lines = self._lines(user_id)
        self.dynamo.batch_delete(self.table, [{"PK": line["PK"], "SK": line["SK"]} for line in lines])
        if mirror_of is not None and len(lines) < mirror_of:
            raise Diverged([("cart", str(user_id))], "MySQL cleared cart lines DynamoDB did not hold")
        return len(lines)
