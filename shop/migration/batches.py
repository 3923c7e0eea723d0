"""Many entities at once from each store, and the batched writes that copy them to DynamoDB:
the reads and writes the sync runs do per chunk instead of per entity.

What each side returns is what its repository's own read returns (the same domain values), so
a chunk compares exactly as `Sync.compare` compares one entity. Carts are the exception to
batching: DynamoDB can only query a cart (one request per cart, on threads).
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import ClientError

from ..aspects.compare import diff, own
from ..domain import NewUser
from ..repositories.dynamodb import keys, listing_counts
from ..repositories.dynamodb.catalog_items import to_category, with_details
from ..repositories.dynamodb.client import cancellation_codes, encode
from ..repositories.dynamodb.copies import (NAME_COPIES, PENDING, line_items, pending_token, rewrite_copies,
                                           rewrite_order_copies, settle)
from ..repositories.dynamodb.orders import _to_order, order_item
from ..repositories.dynamodb.products import _as_new, product_item
from ..repositories.dynamodb.users import to_user, user_items
from ..repositories.mysql import _rows
from ..repositories.mysql.orders import OrderRepository as MySQLOrders
from .sync import ORDER_UPSERT, PRODUCT_UPSERT, USER_UPSERT, IdCollision, order_row, owner_collision, product_row, user_row

# entity -> (MySQL table, the column a keyset walks)
KEYSET = {"user": ("users", "id"), "category": ("categories", "id"), "product": ("products", "id"),
          "cart": ("shopping_carts", "user_id"), "order": ("orders", "id")}
THREADS = 8          # per-entity work (carts, fallbacks) in flight at once
TRANSACT_ACTIONS = 100  # TransactWriteItems' limit


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


def _marks(ids) -> str:
    return ", ".join(["%s"] * len(ids))


def mysql_chunk(db, entity: str, after: int | None, lower: int | None, upper: int | None, limit: int) -> list[int]:
    """The next `limit` ids above `after` within [lower, upper), in id order: a keyset page."""
    table, column = KEYSET[entity]
    where, args = [], []
    for op, bound in ((">", after), (">=", lower), ("<", upper)):
        if bound is not None:
            where.append(f"{column} {op} %s")
            args.append(bound)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    with db.cursor() as cur:
        cur.execute(f"SELECT DISTINCT {column} AS id FROM {table}{clause} ORDER BY {column} LIMIT %s", (*args, limit))
        return [int(r["id"]) for r in cur.fetchall()]


def mysql_existing(db, entity: str, ids) -> set[int]:
    ids = sorted(set(ids))
    if not ids:
        return set()
    table, column = KEYSET[entity]
    with db.cursor() as cur:
        cur.execute(f"SELECT DISTINCT {column} AS id FROM {table} WHERE {column} IN ({_marks(ids)})", ids)
        return {int(r["id"]) for r in cur.fetchall()}


def _pool_map(fn, ids) -> list:
    ids = list(ids)
    if len(ids) <= 1:
        return [fn(i) for i in ids]
    with ThreadPoolExecutor(min(THREADS, len(ids)), thread_name_prefix="sync") as pool:
        return list(pool.map(fn, ids))


def pool_retrying(fn, items) -> list:
    """`fn` over items on threads, each exception caught; what failed other than by an id
    collision (typically a parent another thread or segment was copying at the same moment)
    is tried once more, alone, before its exception is returned."""
    def safe(item):
        try:
            return fn(item)
        except Exception as exc:  # noqa: BLE001 - reported per entity by the run
            return exc
    out = _pool_map(safe, items)
    return [safe(item) if isinstance(o, Exception) and not isinstance(o, IdCollision) else o
            for item, o in zip(items, out)]


def mysql_load(db, repos, entity: str, ids: list[int]) -> dict[int, object]:
    """{id: what MySQL's repository would return} for the ids MySQL holds."""
    if not ids:
        return {}
    if entity == "cart":
        return {i: lines for i, lines in zip(ids, _pool_map(repos.carts.list_items, ids)) if lines}
    with db.cursor() as cur:
        if entity == "user":
            cur.execute(f"SELECT * FROM users WHERE id IN ({_marks(ids)})", ids)
            return {r["id"]: _rows.user(r) for r in cur.fetchall()}
        if entity == "category":
            cur.execute(f"SELECT * FROM categories WHERE id IN ({_marks(ids)})", ids)
            return {r["id"]: _rows.category(r) for r in cur.fetchall()}
        if entity == "product":
            cur.execute(f"{_rows.PRODUCT_SELECT} WHERE p.id IN ({_marks(ids)})", ids)
            return {r["id"]: _rows.product(r) for r in cur.fetchall()}
        cur.execute(f"SELECT * FROM orders WHERE id IN ({_marks(ids)})", ids)
        rows = cur.fetchall()
        items = MySQLOrders._items(cur, [r["id"] for r in rows])
        return {r["id"]: _rows.order(r, items.get(r["id"], [])) for r in rows}


def ddb_load(dynamo, repos, entity: str, ids: list[int]) -> dict[int, object]:
    """{id: what DynamoDB's repository would return} for the ids DynamoDB holds."""
    if not ids:
        return {}
    if entity == "cart":
        return {i: lines for i, lines in zip(ids, _pool_map(repos.carts.list_items, ids)) if lines}
    if entity == "user":
        return {int(i["id"]): to_user(i) for i in dynamo.batch_get(dynamo.table("users"), [keys.user(i) for i in ids])}
    if entity == "category":
        found = dynamo.batch_get(dynamo.table("catalog"), [keys.category(i) for i in ids])
        return {int(i["id"]): to_category(i) for i in found}
    if entity == "product":
        found = dynamo.batch_get(dynamo.table("catalog"), [keys.product(i) for i in ids])
        return {p.id: p for p in with_details(dynamo, found)}
    found = dynamo.batch_get(dynamo.table("orders"), [keys.order(i) for i in ids])
    return {int(i["id"]): _to_order(i, {}) for i in found}


def differences(source, current) -> list:
    """As `Sync.compare`: the records' own attributes, joined products left out."""
    return diff(own(source), own(current), frozenset({"items"}))


class Plan:
    """A page's writes, decided: the ids found equal, outcomes known before writing
    (collisions, items too large), and the write requests still to send, each a callable
    returning {id: outcome}."""

    def __init__(self, decided: dict | None = None, jobs: list | None = None, unchanged=(), then=()):
        self.decided, self.jobs, self.unchanged = decided or {}, jobs or [], list(unchanged)
        self.then = [list(stage) for stage in then]  # stages of jobs, each sent once the one before is


class ForwardWriter:
    """Copies pages of MySQL's entities into DynamoDB with batched writes, in two stages so a
    page's reads can run while the page before it is written: `plan` reads what the writes
    depend on and decides them, `write` sends them. Returns, per id, the outcome ("copied") or
    the exception that stopped it; entities it cannot batch safely go through `Sync.copy`."""

    def __init__(self, sync):
        self.sync, self.dynamo, self.db = sync, sync.dynamo, sync.db

    def plan(self, entity: str, source: dict[int, object], current: dict[int, object], blind=False) -> Plan:
        """What to write for a page: {id: MySQL's value} against {id: DynamoDB's value}
        (`blind`: DynamoDB not read, taken as holding none of them)."""
        if entity == "product":
            return self._products(source, current, blind)
        pairs = {i: (v, current.get(i)) for i, v in source.items() if differences(v, current.get(i))}
        unchanged = [i for i in source if i not in pairs]
        if not pairs:
            return Plan(unchanged=unchanged)
        if entity == "user":
            plan = self._users(pairs)
        elif entity == "order":
            plan = self._orders(pairs)
        else:  # categories are few; a cart is a query per user anyway
            plan = Plan(jobs=[lambda: self._one_by_one(entity, list(pairs))])
        plan.unchanged = unchanged
        return plan

    def write(self, entity: str, plan: Plan) -> dict[int, object]:
        """Send a page's writes, several requests at once (DynamoDB takes concurrent requests
        better than one after another: bench/sync_scale.py)."""
        out = dict(plan.decided)
        for jobs in (plan.jobs, *plan.then):
            for part in _pool_map(lambda job: job(), jobs):
                out.update(part)
        return out

    def _one_by_one(self, entity: str, ids: list[int]) -> dict[int, object]:
        return dict(zip(ids, pool_retrying(lambda i: self.sync.copy("to_dynamodb", entity, i), ids)))

    def _puts(self, table: str, writes: list[tuple[int, dict]]) -> list:
        """(id, write request) pairs as jobs of 25 requests, each answering "copied" for its ids
        (an entity whose items span two jobs is copied when both are sent: a failure stops the run)."""
        def job(chunk):
            return lambda: (self.dynamo.batch_write(table, [w for _, w in chunk]),
                            {i: "copied" for i, _ in chunk})[1]
        return [job(writes[i:i + 25]) for i in range(0, len(writes), 25)]

    def _users(self, pairs) -> Plan:
        table = self.dynamo.table("users")
        decided, writes, copies = {}, [], []
        guards = self.dynamo.batch_get(table, [k for s, _ in pairs.values() for k in
                                               (keys.username_guard(s.username), keys.email_guard(s.email))])
        owner = {(g["PK"], g["SK"]): int(g["user_id"]) for g in guards}
        for user_id, (source, current) in pairs.items():
            if current is not None and current.username.lower() != source.username.lower():
                decided[user_id] = IdCollision(f"user {user_id} is {source.username!r} in MySQL"
                                               f" and {current.username!r} in DynamoDB")
                continue
            taken = [owner[k] for k in ((g["PK"], g["SK"]) for g in (keys.username_guard(source.username),
                                                                     keys.email_guard(source.email)))
                     if owner.get(k, user_id) != user_id]
            if taken:
                decided[user_id] = IdCollision(f"user {user_id}'s username or email belongs to user {taken[0]}"
                                               " in DynamoDB")
                continue
            new = NewUser(username=source.username, email=source.email, password_hash=source.password_hash,
                          first_name=source.first_name, last_name=source.last_name)
            made = user_items(user_id, new, source.is_seller, source.created_at, source.updated_at, source.version)
            if current is not None and source.is_seller:
                # Its products show its email: a change, or a fan-out cut short (whose token
                # this put replaces). Its own token marks the fan-out until it is done.
                made[0][PENDING] = pending_token()
                copies.append((user_id, source.email, made[0][PENDING]))
            writes += [(user_id, {"PutRequest": {"Item": encode(i)}}) for i in made]
            if current is not None and current.email.lower() != source.email.lower():
                writes.append((user_id, {"DeleteRequest": {"Key": encode(keys.email_guard(current.email))}}))
        return Plan(decided, self._puts(table, writes), then=[[
            lambda u=u, e=e, t=t: (rewrite_copies(self.dynamo, "seller", u, {"seller_email": e}, t), {})[1]
            for u, e, t in copies]])

    def _orders(self, pairs) -> Plan:
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
        table = self.dynamo.table("orders")
        return Plan(decided, self._puts(table, lines),
                    then=[self._puts(table, orders), [lambda: (settle(self.dynamo, copied), {})[1]]])

    def _products(self, source, current, blind=False) -> Plan:
        """Items that differ go by BatchWriteItem; products whose listing marker is not their
        membership (new, moved, or an item written before a stop without its marker) move
        the markers and counters in transactions of their own."""
        table = self.dynamo.table("catalog")
        ids = sorted(source)
        if not ids:
            return Plan()
        markers = {} if blind else {  # taken as absent: each marker write is conditioned on it
            int(m["PK"].removeprefix("PRODUCT#")): listing_counts.membership(m)
            for m in self.dynamo.batch_get(table, [keys.product_counted(i) for i in ids])}
        differing = {i for i in ids if differences(source[i], current.get(i))}
        ordered = {}
        if differing:
            with self.db.cursor() as cur:
                cur.execute(f"SELECT product_id, COUNT(*) AS n FROM order_items WHERE product_id IN"
                            f" ({_marks(differing)}) GROUP BY product_id", sorted(differing))
                ordered = {r["product_id"]: r["n"] for r in cur.fetchall()}
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
        jobs = self._puts(table, items) + [lambda group=g: self._moved(table, group) for g in _groups(moves)]
        # What the orders holding a product show of it: rewritten once its item is written.
        return Plan(decided, jobs, unchanged, then=[[lambda i=i, t=t: (rewrite_order_copies(self.dynamo, i, t), {})[1]
                                                      for i, t in fan_outs]])

    def _moved(self, table, group) -> dict[int, object]:
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
            self.dynamo.transact(actions)
        except ClientError as exc:
            if "ConditionalCheckFailed" not in cancellation_codes(exc):
                raise
            return self._one_by_one("product", [m[0] for m in group])
        return {m[0]: "copied" for m in group}


class ReverseWriter:
    """Copies pages of DynamoDB's users, products and orders into MySQL, ids kept: one batched
    read in each store, the collision checks of `Sync`'s reverse copy for the whole page in
    one query, missing parents copied first (one at a time: they are few), then one multi-row
    upsert. Categories and carts go one at a time. Returns {id: outcome or exception}."""

    def __init__(self, sync):
        self.sync, self.db = sync, sync.db

    def copy(self, entity: str, ids: list[int]) -> dict[int, object]:
        if not ids:
            return {}
        batched = {"user": self._users, "product": self._products, "order": self._orders}.get(entity)
        found = ddb_load(self.sync.dynamo, self.sync.ddb, entity, ids) if batched else {}
        if batched is None or len(found) < len(ids):  # gone meanwhile: the one-at-a-time copy says so
            return self._one_by_one(entity, ids)
        decided = {}
        try:
            with self.db.cursor(write=True) as cur:
                batched(cur, found, decided)
        except Exception:  # noqa: BLE001 - a parent copied meanwhile, a unique key: one at a time
            return self._one_by_one(entity, ids)
        return {i: decided.get(i, "copied") for i in ids}

    def _one_by_one(self, entity, ids):
        return dict(zip(ids, pool_retrying(lambda i: self.sync.copy("to_mysql", entity, i), ids)))

    def _parents(self, cur, entity: str, ids) -> None:
        missing = set(ids) - mysql_existing(self.db, entity, ids)
        for i in sorted(missing):
            self.sync.copy_parent(entity, i)

    @staticmethod
    def _collide(found, decided, rows, owner: str, what: str):
        """Entities whose id MySQL gives to another owner: decided as collisions, left out."""
        mine = {r["id"]: r[owner + "_id"] for r in rows}
        keep = {}
        for i, v in found.items():
            collision = owner_collision(what, i, owner, mine.get(i), getattr(v, owner + "_id"))
            if collision:
                decided[i] = collision
            else:
                keep[i] = v
        return keep

    def _users(self, cur, found, decided):
        names = [u.username for u in found.values()]
        emails = [u.email for u in found.values()]
        cur.execute(f"SELECT id, username, email FROM users WHERE id IN ({_marks(found)}) OR username IN"
                    f" ({_marks(names)}) OR email IN ({_marks(emails)})", [*found, *names, *emails])
        rows = cur.fetchall()
        for u in found.values():
            for r in rows:
                same_id = r["id"] == u.id
                if (same_id and r["username"].lower() != u.username.lower()) or (not same_id and (
                        r["username"].lower() == u.username.lower() or r["email"].lower() == u.email.lower())):
                    decided[u.id] = IdCollision(f"user {u.id}'s username or email belongs to user {r['id']} in MySQL"
                                                if not same_id else f"user {u.id} is {r['username']!r} in MySQL"
                                                f" and {u.username!r} in DynamoDB")
        keep = [u for u in found.values() if u.id not in decided]
        if keep:
            cur.executemany(USER_UPSERT, [user_row(u) for u in keep])

    def _products(self, cur, found, decided):
        cur.execute(f"SELECT id, seller_id FROM products WHERE id IN ({_marks(found)})", list(found))
        keep = self._collide(found, decided, cur.fetchall(), "seller", "product")
        self._parents(cur, "user", {p.seller_id for p in keep.values()})
        self._parents(cur, "category", {p.category_id for p in keep.values()})
        if keep:
            cur.executemany(PRODUCT_UPSERT, [product_row(p) for p in keep.values()])

    def _orders(self, cur, found, decided):
        cur.execute(f"SELECT id, user_id FROM orders WHERE id IN ({_marks(found)})", list(found))
        keep = self._collide(found, decided, cur.fetchall(), "user", "order")
        self._parents(cur, "user", {o.user_id for o in keep.values()})
        self._parents(cur, "product", {i.product_id for o in keep.values() for i in o.items})
        if not keep:
            return
        cur.executemany(ORDER_UPSERT, [order_row(o) for o in keep.values()])
        cur.execute(f"DELETE FROM order_items WHERE order_id IN ({_marks(keep)})", list(keep))
        lines = [(i.id, o.id, i.product_id, i.quantity, i.price_at_time) for o in keep.values() for i in o.items]
        if lines:
            cur.executemany("INSERT INTO order_items (id, order_id, product_id, quantity, price_at_time)"
                            " VALUES (%s, %s, %s, %s, %s)", lines)
