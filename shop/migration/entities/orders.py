"""Orders: one item each in DynamoDB holding its lines and what it shows of their products,
with an ORDER_LINE item per product (what a rename's fan-out finds it by). An order whose buyer
differs between the stores under one id is an id collision."""
from __future__ import annotations

from ...repositories.dynamodb import keys
from ...repositories.dynamodb.client import encode
from ...repositories.dynamodb.copies import line_items, settle
from ...repositories.dynamodb.orders import _to_order, order_item
from ...repositories.mysql import _rows
from ...repositories.mysql.orders import OrderRepository as MySQLOrders
from ..copying import COPIED, DELETED, Plan, marks, newer_wins, owner_collision
from .base import Entity

UPSERT = ("INSERT INTO orders (id, user_id, total_amount, status, created_at, updated_at, version)"
          " VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
          + newer_wins(("total_amount", "status", "updated_at")))
LINES = "INSERT INTO order_items (id, order_id, product_id, quantity, price_at_time) VALUES (%s, %s, %s, %s, %s)"


def row(o) -> tuple:
    return (o.id, o.user_id, o.total_amount, o.status, o.created_at, o.updated_at, o.version or 1)


class Orders(Entity):
    name, repository, repos_attr, key = "order", "OrderRepository", "orders", "order_id"
    mysql_table, ddb_table, ddb_kind = "orders", "orders", "ORDER"
    counters = (("order", "orders"), ("order_item", "order_items"))
    parents = ("user", "product")
    blind_first_copy = True

    def read(self, repos, entity_id):
        return repos.orders.get_by_id(entity_id)

    def load_mysql(self, db, repos, ids):
        with db.cursor() as cur:
            cur.execute(f"SELECT * FROM orders WHERE id IN ({marks(ids)})", ids)
            rows = cur.fetchall()
            items = MySQLOrders._items(cur, [r["id"] for r in rows])
            return {r["id"]: _rows.order(r, items.get(r["id"], [])) for r in rows}

    def load_dynamodb(self, dynamo, repos, ids):
        found = dynamo.batch_get(dynamo.table("orders"), [keys.order(i) for i in ids])
        return {int(i["id"]): _to_order(i, {}) for i in found}

    # --- one ----------------------------------------------------------------------------------

    def to_dynamodb(self, copier, order_id, deleted):
        dynamo = copier.dynamo
        source = copier.mysql.orders.get_by_id(order_id)
        table = dynamo.table("orders")
        current = copier.ddb.orders.get_by_id(order_id)
        if source is None:
            outcome = copier.forward_gone(current, deleted, "orders", keys.order(order_id))
            if outcome == DELETED:
                dynamo.batch_delete(table, [keys.order_line(p, order_id) for p in {i.product_id for i in current.items}])
            return outcome
        collision = owner_collision("order", order_id, "user", source.user_id, current and current.user_id)
        if collision:
            raise collision
        # Lines first (a rename's fan-out finds the order as soon as it exists), then the order,
        # then its copies settled against the product items as they are now.
        dynamo.batch_write(table, [{"PutRequest": {"Item": encode(line)}} for line in line_items(source)])
        dynamo.call("put_item", TableName=table, Item=encode(order_item(source)))
        settle(dynamo, [source])
        return COPIED

    def to_mysql(self, copier, order_id, deleted):
        o = copier.ddb.orders.get_by_id(order_id)
        if o is None:
            return copier.reverse_gone("orders", order_id, deleted)
        copier.check_owner("order", "orders", "user", o)
        copier.copy_parent("user", o.user_id)
        for product_id in {i.product_id for i in o.items}:
            copier.copy_parent("product", product_id)
        with copier.db.cursor(write=True) as cur:
            cur.execute(UPSERT, row(o))
            cur.execute("DELETE FROM order_items WHERE order_id = %s", (order_id,))
            cur.executemany(LINES, [(i.id, order_id, i.product_id, i.quantity, i.price_at_time) for i in o.items])
        return COPIED

    # --- a page -------------------------------------------------------------------------------

    def plan_copies(self, writer, pairs) -> Plan:
        """The ORDER_LINE items first, so a rename's fan-out finds an order as soon as it exists;
        then the orders; then their copies settled against the product items as they are now
        (MySQL's join was read a page ahead: a rename may have fanned out before)."""
        decided, lines, orders, copied = {}, [], [], []
        for order_id, (source, current) in pairs.items():
            collision = owner_collision("order", order_id, "user", source.user_id, current and current.user_id)
            if collision:
                decided[order_id] = collision
                continue
            try:
                orders.append((order_id, {"PutRequest": {"Item": encode(order_item(source))}}))
            except Exception as exc:  # noqa: BLE001 - too large for an item: reported, the rest copied
                decided[order_id] = exc
                continue
            lines += [(order_id, {"PutRequest": {"Item": encode(line)}}) for line in line_items(source)]
            copied.append(source)
        table = writer.dynamo.table("orders")
        return Plan(decided, writer.puts(table, lines),
                    then=[writer.puts(table, orders), [lambda: (settle(writer.dynamo, copied), {})[1]]])

    def write_page_to_mysql(self, writer, cur, found, decided):
        cur.execute(f"SELECT id, user_id FROM orders WHERE id IN ({marks(found)})", list(found))
        keep = writer.collide(found, decided, cur.fetchall(), "user", "order")
        writer.parents("user", {o.user_id for o in keep.values()})
        writer.parents("product", {i.product_id for o in keep.values() for i in o.items})
        if not keep:
            return
        cur.executemany(UPSERT, [row(o) for o in keep.values()])
        cur.execute(f"DELETE FROM order_items WHERE order_id IN ({marks(keep)})", list(keep))
        lines = [(i.id, o.id, i.product_id, i.quantity, i.price_at_time) for o in keep.values() for i in o.items]
        if lines:
            cur.executemany(LINES, lines)


ORDERS = Orders()
