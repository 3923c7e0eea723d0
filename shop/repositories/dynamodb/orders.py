"""Orders in DynamoDB: one item per order holding its items and copies of what it shows of
their products (copies.py), so an order is one GetItem; GSI1 lists a user's orders.
Checkout is one TransactWriteItems with an idempotency token."""
from __future__ import annotations

import uuid
from dataclasses import replace
from decimal import Decimal

from botocore.exceptions import ClientError

from ...domain import MAX_ORDER_LINES, Order, OrderedProduct, OrderItem, OrderSummary, Page, too_many_lines
from ...errors import (ConflictError, DuplicateError, EmptyCartError, InsufficientInventoryError,
                       InvalidStateError, NotFoundError, ShopError, ValidationError)
from . import keys
from .catalog_items import products_by_id, with_details
from .products import ProductRepository
from .copies import copies_of, line_items, shown_from_item, shown_from_product, still_shows, to_ordered
from .counters import IdTaken, create_with_free_id
from .errors import Diverged, ItemTooLargeError, Superseded
from .client import (cancellation_codes, check_size, condition_failed, encode, held_version, iso, money,
                     newer_than_held, next_version, parse_iso, utcnow)

# TransactWriteItems holds 100 actions: the order, and per line its stock, its cart line and
# its ORDER_LINE item (what a rename's fan-out finds the order by).
MAX_LINES = MAX_ORDER_LINES
_ATTEMPTS = 4  # checkouts read again after a product they copied was renamed meanwhile


def order_item(order: Order) -> dict:
    """The DynamoDB item for an order with its items (checked against the size limit)."""
    created = iso(order.created_at)
    item = {**keys.order(order.id), "entity": "ORDER", "id": int(order.id), "user_id": int(order.user_id),
            "total_amount": money(order.total_amount), "status": order.status, "created_at": created,
            "updated_at": iso(order.updated_at),
            "items": [{"id": int(i.id), "product_id": int(i.product_id), "quantity": int(i.quantity),
                       "price_at_time": money(i.price_at_time)} for i in order.items],
            "GSI1PK": f"USER#{int(order.user_id)}", "GSI1SK": keys.newest(created, order.id),
            "version": int(order.version or 1)}
    check_size(encode(item), "order")
    copies = copies_of(order)
    if copies is not None:
        try:  # no checkout makes one this large; an order of MySQL's with more lines may be
            check_size(encode({**item, "products": copies}), "order")
            item["products"] = copies
        except ItemTooLargeError:
            pass  # without its copies: joined when read, as orders from before the copies are
    return item


class _Renamed(Exception):
    """A product the checkout copied into the order showed something else at commit time, or
    (mirrored) took a newer copy between the read and the commit: read again."""


def checkout_token() -> str:
    """Unique per checkout: DynamoDB remembers a token account-wide for 10 minutes, so a token
    derived from the order id would reject a later checkout that reuses an id (a restored
    database). Retries inside one call reuse it (Dynamo.transact), which is all it is for."""
    return "co-" + uuid.uuid4().hex


def _uncopied(items: list[dict]) -> set[int]:
    """The products that orders written before the copies existed show: joined when read."""
    return {int(i["product_id"]) for o in items if "products" not in o for i in o.get("items", [])}


def _to_order(item: dict, products: dict) -> Order:
    """The order from its item: what it shows of its products from its copies, or from
    `products` (OrderedProduct or Product by id) for an order written before the copies."""
    copies = item.get("products") or {}
    shown = {int(k): to_ordered(int(k), v) for k, v in copies.items()}
    for pid, p in products.items():
        if pid not in shown:
            shown[pid] = p if isinstance(p, OrderedProduct) else to_ordered(pid, shown_from_product(p))
    return Order(
        id=int(item["id"]), user_id=int(item["user_id"]), total_amount=money(item["total_amount"]),
        status=item["status"], created_at=parse_iso(item["created_at"]), updated_at=parse_iso(item["updated_at"]),
        items=[OrderItem(id=int(i["id"]), order_id=int(item["id"]), product_id=int(i["product_id"]),
                         quantity=int(i["quantity"]), price_at_time=money(i["price_at_time"]),
                         product=shown.get(int(i["product_id"])))
               for i in sorted(item.get("items", []), key=lambda i: int(i["id"]))],
        version=held_version(item))


class OrderRepository:
    def __init__(self, dynamo, ids):
        self.dynamo = dynamo
        self.ids = ids
        self.table = dynamo.table("orders")
        self.catalog = dynamo.table("catalog")
        self.users = dynamo.table("users")
        self.product_copies = ProductRepository(dynamo, ids)  # a mirrored order's products, copied whole

    def checkout(self, user_id: int, *, mirror_of: Order | None = None) -> Order:
        return create_with_free_id(lambda: self._checkout(user_id, mirror_of), "order", mirror_of,
                                   lambda m: DuplicateError(m, field="id"))

    def _checkout(self, user_id: int, mirror_of: Order | None) -> Order:
        for _ in range(_ATTEMPTS):
            lines = self.dynamo.query_all(TableName=self.users, ConsistentRead=True,
                                          KeyConditionExpression="PK = :pk AND begins_with(SK, :sk)",
                                          ExpressionAttributeValues=encode({":pk": f"USER#{user_id}", ":sk": "CART#"}))
            try:
                if mirror_of is not None:
                    return self._mirror_checkout(mirror_of, lines)
                return self._own_checkout(user_id, lines)
            except _Renamed:
                continue  # a product copied into the order changed meanwhile: read again
        raise ConflictError("Products in the cart kept changing during checkout; please try again")

    def _products(self, product_ids) -> tuple[dict, dict]:
        """({id: product item}, {id: what its order line shows}) for the products DynamoDB holds."""
        raw = self.dynamo.batch_get(self.catalog, [keys.product(int(p)) for p in product_ids])
        items = {int(p["id"]): p for p in raw}
        joined = with_details(self.dynamo, [dict(p) for p in raw])  # an item from before the name copies
        return items, {p.id: to_ordered(p.id, shown_from_product(p)) for p in joined}

    def _own_checkout(self, user_id: int, lines: list[dict]) -> Order:
        products, shown = self._products(int(line["product_id"]) for line in lines)
        lines = sorted((ln for ln in lines if int(ln["product_id"]) in products), key=lambda ln: int(ln["product_id"]))
        if not lines:
            raise EmptyCartError("Cart is empty")
        if len(lines) > MAX_LINES:
            raise ValidationError(too_many_lines(len(lines)))
        self._raise_if_short(lines, products)
        order_id = self.ids.allocate("order")[0]
        item_ids = self.ids.allocate("order_item", len(lines))
        created = utcnow()
        items = [OrderItem(id=item_id, order_id=order_id, product_id=int(ln["product_id"]),
                           quantity=int(ln["quantity"]), price_at_time=money(products[int(ln["product_id"])]["price"]),
                           product=shown[int(ln["product_id"])])
                 for item_id, ln in zip(item_ids, lines)]
        total = sum((i.price_at_time * i.quantity for i in items), Decimal(0))
        order = Order(id=order_id, user_id=user_id, total_amount=money(total), status="completed",
                      created_at=created, updated_at=created, items=items)
        # Each line's cart entry goes only if it still holds the quantity that was priced.
        deletes = [{"Delete": {"TableName": self.users, "Key": encode({"PK": ln["PK"], "SK": ln["SK"]}),
                               "ConditionExpression": "quantity = :q",
                               "ExpressionAttributeValues": encode({":q": int(ln["quantity"])})}} for ln in lines]
        self._commit(order, deletes, lines, products, None)
        return self.get_by_id(order_id)

    def _mirror_checkout(self, mirror_of: Order, lines: list[dict]) -> Order:
        """The order exactly as MySQL committed it (items, quantities, prices, ids), its cart
        emptied, as MySQL's transaction did; then each product as that transaction left it
        (stock moved, version bumped), kept only if newer than DynamoDB's copy. What the order
        shows of its products is copied from DynamoDB's product items, as a checkout of its own
        does: a rename whose DynamoDB half landed first is in them, and one landing later fans
        out to this order (copies.py)."""
        if len(mirror_of.items) > MAX_LINES:
            raise ValidationError(too_many_lines(len(mirror_of.items)))
        products, shown = self._products(i.product_id for i in mirror_of.items)
        order = replace(mirror_of, items=[replace(i, product=shown.get(i.product_id, i.product))
                                          for i in mirror_of.items])
        in_order = {i.product_id for i in mirror_of.items}
        deletes = [{"Delete": {"TableName": self.users, "Key": encode({"PK": ln["PK"], "SK": ln["SK"]})}}
                   for ln in lines if int(ln["product_id"]) in in_order]
        rest = [ln for ln in lines if int(ln["product_id"]) not in in_order]
        self._commit(order, deletes, [{"product_id": i.product_id, "quantity": i.quantity}
                                      for i in sorted(mirror_of.items, key=lambda i: i.product_id)],
                     products, mirror_of)
        # MySQL's checkout empties the whole cart (lines whose product vanished included).
        self.dynamo.batch_delete(self.users, [{"PK": ln["PK"], "SK": ln["SK"]} for ln in rest])
        behind = self._copy_products(mirror_of)
        if len(deletes) < len(in_order):  # a line of the order DynamoDB never had: one may be on its way
            behind.append(("cart", str(mirror_of.user_id)))
        if behind:
            raise Diverged(behind, "DynamoDB lacked part of what MySQL's checkout changed")
        return self.get_by_id(mirror_of.id)

    def _copy_products(self, mirror_of: Order) -> list[tuple[str, str]]:
        """Each product of a mirrored order as MySQL's transaction left it, whole: a copy of only
        its stock could not carry its version (another change of the product, in flight, would
        then be taken as older). Returns the products DynamoDB lacks or could not take."""
        behind = []
        committed = {i.product_id: i.as_committed for i in mirror_of.items if i.as_committed is not None}
        for product_id, product in sorted(committed.items()):
            try:
                if self.product_copies.update(product_id, {}, mirror_of=product) is None:
                    behind.append(("product", str(product_id)))
            except Superseded:
                pass  # a newer copy is there already: it counts this order
            except ShopError:  # kept changing: a repair copies it from MySQL
                behind.append(("product", str(product_id)))
        return behind

    def _commit(self, order: Order, cart_deletes: list, lines: list, products: dict, mirror_of: Order | None) -> None:
        """One transaction: the order (only if its id is free), each product's stock (only if
        enough is left and the product still shows what the order copied of it; mirrored, only
        its count of orders: the product is copied after), the cart lines, the ORDER_LINE items.
        A taken id raises IdTaken, a renamed product _Renamed."""
        item = order_item(order)
        actions = [{"Put": {"TableName": self.table, "Item": encode(item),
                            "ConditionExpression": "attribute_not_exists(PK)"}}]
        for ln in lines:
            q, pid = int(ln["quantity"]), int(ln["product_id"])
            update = self._stock(pid, q, mirror_of is not None, order.created_at)
            if pid in products:
                same, names, shown = still_shows(shown_from_item(products[pid]))
                update["ConditionExpression"] += f" AND {same}"
                update["ExpressionAttributeNames"] = {**update.get("ExpressionAttributeNames", {}), **names}
                update["ExpressionAttributeValues"].update(shown)
            update["ExpressionAttributeValues"] = encode(update["ExpressionAttributeValues"])
            actions.append({"Update": update})
        actions += cart_deletes
        actions += [{"Put": {"TableName": self.table, "Item": encode(line)}} for line in line_items(order)]
        stock = slice(1, 1 + len(lines))
        try:
            self.dynamo.transact(actions, token=checkout_token())
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise IdTaken(order.id) from exc
            if any(c == "ConditionalCheckFailed" for c in codes[stock]):
                fresh = {int(p["id"]): p for p in self.dynamo.batch_get(
                    self.catalog, [keys.product(int(ln["product_id"])) for ln in lines])}
                if any(pid in fresh and shown_from_item(fresh[pid]) != shown_from_item(p) for pid, p in products.items()):
                    raise _Renamed() from exc
                if mirror_of is None:
                    self._raise_if_short(lines, fresh)
                if any(int(ln["product_id"]) not in fresh for ln in lines):
                    raise NotFoundError("Product not found") from exc
                raise ConflictError("Stock changed during checkout; please try again") from exc
            if any(c == "ConditionalCheckFailed" for c in codes[stock.stop:]):
                raise ConflictError("The cart changed during checkout; please review it") from exc
            raise

    def _stock(self, product_id: int, delta: int, mirrored: bool, when) -> dict | None:
        """The Update of one product by an order (delta < 0: a cancel returning stock): its own
        move of the stock, conditioned on enough being left, with its version moved on; mirrored,
        only the count of orders holding it (None for a cancel): the product is copied whole
        after, as MySQL's transaction left it. Every checkout counts in times_ordered."""
        key = {"TableName": self.catalog, "Key": encode(keys.product(product_id))}
        values: dict = {":one": 1} if delta > 0 else {}
        ordered = " ADD times_ordered :one" if delta > 0 else ""
        if mirrored:
            if delta <= 0:
                return None
            return {**key, "UpdateExpression": ordered.strip(), "ConditionExpression": "attribute_exists(PK)",
                    "ExpressionAttributeValues": values}
        bump, names, version = next_version()
        values.update({**version, ":q": delta, ":u": iso(when)})
        return {**key,
                "UpdateExpression": f"SET inventory_quantity = inventory_quantity - :q, {bump}, updated_at = :u{ordered}",
                "ConditionExpression": "attribute_exists(PK)" + (" AND inventory_quantity >= :q" if delta > 0 else ""),
                "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}

    @staticmethod
    def _raise_if_short(lines, products) -> None:
        issues = []
        for ln in lines:
            p = products.get(int(ln["product_id"]))
            if p is not None and int(ln["quantity"]) > int(p["inventory_quantity"]):
                issues.append(f"{p['name']}: requested {int(ln['quantity'])}, "
                              f"but only {int(p['inventory_quantity'])} available")
        if issues:
            raise InsufficientInventoryError("Inventory issues: " + ", ".join(issues), issues=issues)

    def get_by_id(self, order_id: int) -> Order | None:
        item = self.dynamo.get(self.table, keys.order(order_id))
        if item is None:
            return None
        return _to_order(item, products_by_id(self.dynamo, _uncopied([item])))

    def list_by_user(self, user_id: int, page: int = 1, limit: int = 20) -> Page:
        items = self.dynamo.query_all(TableName=self.table, IndexName="GSI1", ScanIndexForward=False,
                                      KeyConditionExpression="GSI1PK = :pk",
                                      ExpressionAttributeValues=encode({":pk": f"USER#{user_id}"}))
        chosen = items[(page - 1) * limit: page * limit]
        products = products_by_id(self.dynamo, _uncopied(chosen))
        return Page(items=[_to_order(o, products) for o in chosen], total=len(items), page=page, limit=limit)

    def set_status(self, order_id: int, status: str, expected: str | None = None, *,
                   mirror_of: Order | None = None) -> Order | None:
        if mirror_of is not None:  # the status MySQL ended with, if newer (MySQL checked the move)
            newer, names, values = newer_than_held(mirror_of.version)
            condition, version = f"attribute_exists(PK) AND {newer}", "#ver = :ver"
            values.update({":s": mirror_of.status, ":u": iso(mirror_of.updated_at)})
        else:
            version, names, values = next_version()
            condition = "attribute_exists(PK)"
            values.update({":s": status, ":u": iso(utcnow())})
            if expected is not None:
                condition, values[":e"] = condition + " AND #s = :e", expected
        try:
            self.dynamo.call("update_item", TableName=self.table, Key=encode(keys.order(order_id)),
                             UpdateExpression=f"SET #s = :s, updated_at = :u, {version}", ConditionExpression=condition,
                             ExpressionAttributeNames={"#s": "status", **names}, ExpressionAttributeValues=encode(values))
        except ClientError as exc:
            if not condition_failed(exc):
                raise
            current = self.dynamo.get(self.table, keys.order(order_id))
            if current is None:
                return None
            if mirror_of is not None:
                raise Superseded(f"order {order_id}", held_version(current), mirror_of.version) from exc
            raise InvalidStateError(f"The order is {current['status']}, no longer {expected}") from exc
        return self.get_by_id(order_id)

    def cancel(self, order_id: int, *, mirror_of: Order | None = None) -> Order | None:
        """A pending order cancelled and its items back in stock, in one transaction. Mirrored:
        the order's status as MySQL left it, if newer, then each product copied whole as MySQL's
        transaction left it (as a mirrored checkout does)."""
        if mirror_of is not None:
            superseded, order = None, None
            try:
                order = self.set_status(order_id, mirror_of.status, mirror_of=mirror_of)
            except Superseded as exc:  # the order's newer copy is there; its products may not be
                superseded = exc
            behind = self._copy_products(mirror_of)
            if behind:
                raise Diverged(behind, "DynamoDB lacked part of what MySQL's cancel changed")
            if superseded is not None:
                raise superseded
            return order
        item = self.dynamo.get(self.table, keys.order(order_id))
        if item is None:
            raise NotFoundError("Order not found")
        if item["status"] != "pending":
            raise InvalidStateError("Only pending orders can be cancelled")
        version, names, values = next_version()
        values.update({":c": "cancelled", ":p": "pending", ":u": iso(utcnow())})
        actions = [{"Update": {
            "TableName": self.table, "Key": encode(keys.order(order_id)),
            "UpdateExpression": f"SET #s = :c, updated_at = :u, {version}", "ConditionExpression": "#s = :p",
            "ExpressionAttributeNames": {"#s": "status", **names}, "ExpressionAttributeValues": encode(values)}}]
        for i in sorted(item.get("items", []), key=lambda i: int(i["product_id"])):
            update = self._stock(int(i["product_id"]), -int(i["quantity"]), False, utcnow())
            update["ExpressionAttributeValues"] = encode(update["ExpressionAttributeValues"])
            actions.append({"Update": update})
        try:
            self.dynamo.transact(actions)
        except ClientError as exc:
            if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                raise InvalidStateError("Only pending orders can be cancelled") from exc
            raise
        return self.get_by_id(order_id)

    def summary_by_user(self, user_id: int) -> OrderSummary:
        items = self.dynamo.query_all(TableName=self.table, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk",
                                      ProjectionExpression="#s, total_amount", ExpressionAttributeNames={"#s": "status"},
                                      ExpressionAttributeValues=encode({":pk": f"USER#{user_id}"}))
        count = lambda s: sum(1 for i in items if i["status"] == s)  # noqa: E731
        return OrderSummary(total_orders=len(items),
                            total_spent=money(sum((Decimal(i["total_amount"]) for i in items), Decimal(0))),
                            completed_orders=count("completed"), pending_orders=count("pending"),
                            cancelled_orders=count("cancelled"))
