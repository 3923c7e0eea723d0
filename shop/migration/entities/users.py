"""Users: one item each in DynamoDB with two guard items (username, email) that keep them
unique. A user whose username differs between the stores under one id is an id collision;
so is a username or email another user holds in the target store."""
from __future__ import annotations

from ...domain import NewUser
from ...repositories.dynamodb import keys
from ...repositories.dynamodb.client import encode
from ...repositories.dynamodb.copies import PENDING, pending_token, rewrite_copies
from ...repositories.dynamodb.users import to_user, user_items
from ...repositories.mysql import _rows
from ..copying import COPIED, DELETED, LEFT, ABSENT, IdCollision, Plan, marks, newer_wins
from .base import Entity

UPSERT = (
    "INSERT INTO users (id, username, email, password_hash, first_name, last_name, is_seller, created_at,"
    " updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
    + newer_wins(("email", "password_hash", "first_name", "last_name", "is_seller", "updated_at")))


def row(u) -> tuple:
    return (u.id, u.username, u.email, u.password_hash, u.first_name, u.last_name, u.is_seller, u.created_at,
            u.updated_at, u.version or 1)


def _other_user(user_id, mine_username, theirs_username) -> IdCollision:
    return IdCollision(f"user {user_id} is {mine_username!r} in MySQL and {theirs_username!r} in DynamoDB")


class Users(Entity):
    name, repository, repos_attr, key = "user", "UserRepository", "users", "user_id"
    mysql_table, ddb_table, ddb_kind = "users", "users", "USER"
    counters = (("user", "users"),)

    def read(self, repos, entity_id):
        return repos.users.get_by_id(entity_id)

    def load_mysql(self, db, repos, ids):
        with db.cursor() as cur:
            cur.execute(f"SELECT * FROM users WHERE id IN ({marks(ids)})", ids)
            return {r["id"]: _rows.user(r) for r in cur.fetchall()}

    def load_dynamodb(self, dynamo, repos, ids):
        return {int(i["id"]): to_user(i) for i in dynamo.batch_get(dynamo.table("users"), [keys.user(i) for i in ids])}

    # --- one ----------------------------------------------------------------------------------

    def to_dynamodb(self, copier, user_id, deleted):
        source = copier.mysql.users.get_by_id(user_id)
        current = copier.ddb.users.get_by_id(user_id)
        if source is None and (current is None or not deleted):
            return ABSENT if current is None else LEFT
        if current is not None and source is not None and current.username.lower() != source.username.lower():
            raise _other_user(user_id, source.username, current.username)
        if current is not None:
            _delete(copier.dynamo, current)
        if source is None:
            return DELETED
        try:
            _create(copier.ddb, source)
        except Exception:
            if current is not None:
                _create(copier.ddb, current)  # put back what was there: never leave the user deleted
            raise
        if current is not None:  # the seller's products show the email: a change, or one whose
            # fan-out was cut short, is finished here
            rewrite_copies(copier.dynamo, "seller", user_id, {"seller_email": source.email})
        return COPIED

    def to_mysql(self, copier, user_id, deleted):
        u = copier.ddb.users.get_by_id(user_id)
        if u is None:
            return copier.reverse_gone("users", user_id, deleted)
        mine = copier.mysql_row("SELECT username FROM users WHERE id = %s", (user_id,))
        if mine is not None and mine["username"].lower() != u.username.lower():
            raise _other_user(user_id, mine["username"], u.username)
        # username and email are unique keys too: an upsert would update whichever row holds them.
        other = copier.mysql_row("SELECT id FROM users WHERE (username = %s OR email = %s) AND id <> %s",
                                 (u.username, u.email, user_id))
        if other is not None:
            raise IdCollision(f"user {user_id}'s username or email belongs to user {other['id']} in MySQL")
        with copier.db.cursor(write=True) as cur:
            cur.execute(UPSERT, row(u))
        return COPIED

    # --- a page -------------------------------------------------------------------------------

    def plan_copies(self, writer, pairs) -> Plan:
        """Users and their guards by BatchWriteItem; a username or email another user holds in
        DynamoDB is a collision, decided before writing."""
        dynamo = writer.dynamo
        table = dynamo.table("users")
        decided, writes, copies = {}, [], []
        guards = dynamo.batch_get(table, [k for s, _ in pairs.values() for k in
                                          (keys.username_guard(s.username), keys.email_guard(s.email))])
        owner = {(g["PK"], g["SK"]): int(g["user_id"]) for g in guards}
        for user_id, (source, current) in pairs.items():
            if current is not None and current.username.lower() != source.username.lower():
                decided[user_id] = _other_user(user_id, source.username, current.username)
                continue
            taken = [owner[k] for k in ((g["PK"], g["SK"]) for g in (keys.username_guard(source.username),
                                                                     keys.email_guard(source.email)))
                     if owner.get(k, user_id) != user_id]
            if taken:
                decided[user_id] = IdCollision(f"user {user_id}'s username or email belongs to user {taken[0]}"
                                               " in DynamoDB")
                continue
            made = user_items(user_id, _as_new(source), source.is_seller, source.created_at, source.updated_at,
                              source.version)
            if current is not None and source.is_seller:
                # Its products show its email: a change, or a fan-out cut short (whose token
                # this put replaces). Its own token marks the fan-out until it is done.
                made[0][PENDING] = pending_token()
                copies.append((user_id, source.email, made[0][PENDING]))
            writes += [(user_id, {"PutRequest": {"Item": encode(i)}}) for i in made]
            if current is not None and current.email.lower() != source.email.lower():
                writes.append((user_id, {"DeleteRequest": {"Key": encode(keys.email_guard(current.email))}}))
        return Plan(decided, writer.puts(table, writes), then=[[
            lambda u=u, e=e, t=t: (rewrite_copies(dynamo, "seller", u, {"seller_email": e}, t), {})[1]
            for u, e, t in copies]])

    def write_page_to_mysql(self, writer, cur, found, decided):
        names = [u.username for u in found.values()]
        emails = [u.email for u in found.values()]
        cur.execute(f"SELECT id, username, email FROM users WHERE id IN ({marks(found)}) OR username IN"
                    f" ({marks(names)}) OR email IN ({marks(emails)})", [*found, *names, *emails])
        rows = cur.fetchall()
        for u in found.values():
            for r in rows:
                same_id = r["id"] == u.id
                if same_id and r["username"].lower() != u.username.lower():
                    decided[u.id] = _other_user(u.id, r["username"], u.username)
                elif not same_id and (r["username"].lower() == u.username.lower()
                                      or r["email"].lower() == u.email.lower()):
                    decided[u.id] = IdCollision(f"user {u.id}'s username or email belongs to user {r['id']} in MySQL")
        keep = [u for u in found.values() if u.id not in decided]
        if keep:
            cur.executemany(UPSERT, [row(u) for u in keep])


def _as_new(user) -> NewUser:
    return NewUser(username=user.username, email=user.email, password_hash=user.password_hash,
                   first_name=user.first_name, last_name=user.last_name)


def _delete(dynamo, user) -> None:
    users = dynamo.table("users")
    dynamo.transact([{"Delete": {"TableName": users, "Key": encode(k)}} for k in (
        keys.user(user.id), keys.username_guard(user.username), keys.email_guard(user.email))])


def _create(ddb, user) -> None:
    ddb.users.create(_as_new(user), mirror_of=user)


USERS = Users()
