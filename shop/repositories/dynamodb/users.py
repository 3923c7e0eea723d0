"""Users in DynamoDB: one item per user plus guard items that keep usernames and emails unique."""
from __future__ import annotations

from botocore.exceptions import ClientError

from ...domain import NewUser, User
from ...errors import DuplicateError
from . import keys
from .copies import PENDING, after_commit, pending_token, rewrite_copies
from .counters import IdTaken, create_with_free_id
from .client import (cancellation_codes, check_size, condition_failed, decode, encode, held_version, iso,
                     newer_than_held, next_version, parse_iso, utcnow)
from .errors import Superseded


def to_user(item: dict) -> User:
    return User(id=int(item["id"]), username=item["username"], email=item["email"],
                password_hash=item["password_hash"], first_name=item.get("first_name"),
                last_name=item.get("last_name"), is_seller=bool(item.get("is_seller", False)),
                created_at=parse_iso(item["created_at"]), updated_at=parse_iso(item["updated_at"]),
                version=held_version(item))


def user_items(user_id: int, new: NewUser, is_seller: bool, created, updated, version: int = 1) -> list[dict]:
    """The user's item, then its username and email guards (checked against the size limit)."""
    item = {**keys.user(user_id), "entity": "USER", "id": user_id, "username": new.username,
            "email": new.email, "password_hash": new.password_hash, "first_name": new.first_name,
            "last_name": new.last_name, "is_seller": bool(is_seller),
            "created_at": iso(created), "updated_at": iso(updated), "version": int(version)}
    check_size(encode(item), "user")
    return [item, {**keys.username_guard(new.username), "entity": "USERNAME", "user_id": user_id},
            {**keys.email_guard(new.email), "entity": "EMAIL", "user_id": user_id}]


class UserRepository:
    def __init__(self, dynamo, ids):
        self.dynamo = dynamo
        self.ids = ids
        self.table = dynamo.table("users")

    def get_by_id(self, user_id: int) -> User | None:
        item = self.dynamo.get(self.table, keys.user(user_id))
        return to_user(item) if item else None

    def get_by_username(self, username: str) -> User | None:
        return self._via_guard(keys.username_guard(username))

    def get_by_email(self, email: str) -> User | None:
        return self._via_guard(keys.email_guard(email))

    def create(self, new: NewUser, *, mirror_of: User | None = None) -> User:
        """One transaction: the user and both guards, each only if absent. A mirrored write
        stores the user as MySQL saved it; a new id that is already taken (counters behind
        ids mirrored earlier) is replaced by the next one, never reported to the caller."""
        return create_with_free_id(lambda: self._create(new, mirror_of), "user", mirror_of,
                                   lambda m: DuplicateError(m, field="id"))

    def _create(self, new: NewUser, mirror_of: User | None) -> User:
        if mirror_of is not None:  # MySQL's resulting row, not the request
            new = NewUser(username=mirror_of.username, email=mirror_of.email, password_hash=mirror_of.password_hash,
                          first_name=mirror_of.first_name, last_name=mirror_of.last_name)
        user_id = self.ids.ensure_id("user", mirror_of.id if mirror_of else None)
        created = mirror_of.created_at if mirror_of else utcnow()
        item, *guards = user_items(user_id, new, bool(mirror_of.is_seller) if mirror_of else False,
                                   created, mirror_of.updated_at if mirror_of else created,
                                   mirror_of.version if mirror_of else 1)
        put = lambda i: {"Put": {"TableName": self.table, "Item": encode(i),  # noqa: E731
                                 "ConditionExpression": "attribute_not_exists(PK)"}}
        try:
            self.dynamo.transact([put(item), *(put(g) for g in guards)])
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if len(codes) == 3 and codes[1] == "ConditionalCheckFailed":
                raise DuplicateError("Username already exists", field="username") from exc
            if len(codes) == 3 and codes[2] == "ConditionalCheckFailed":
                raise DuplicateError("Email already exists", field="email") from exc
            if len(codes) == 3 and codes[0] == "ConditionalCheckFailed":
                raise IdTaken(user_id) from exc
            raise
        return to_user(item)

    def update_profile(self, user_id: int, changes: dict, *, mirror_of: User | None = None) -> User | None:
        unknown = set(changes) - {"email", "first_name", "last_name"}
        if unknown and mirror_of is None:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if mirror_of is not None:  # MySQL's resulting user, whole, whatever the request changed
            changes = {"email": mirror_of.email, "first_name": mirror_of.first_name, "last_name": mirror_of.last_name,
                       "is_seller": bool(mirror_of.is_seller), "password_hash": mirror_of.password_hash}
        raw = self.dynamo.get(self.table, keys.user(user_id))
        if raw is None:
            return None
        if mirror_of is not None and held_version(raw) >= mirror_of.version:
            raise Superseded(f"user {user_id}", held_version(raw), mirror_of.version)
        current = to_user(raw)
        # An email change fans out to the seller's products: marked pending in this write and
        # cleared once done, so a fan-out cut short is taken up by the next update.
        new_email = changes.get("email")
        token = pending_token() if (new_email is not None and new_email != current.email) or raw.get(PENDING) \
            else None
        actions = [self._update_if_unchanged(user_id, current, changes, mirror_of, token)]
        if new_email and new_email.lower() != current.email.lower():
            actions += [
                {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(PK)",
                         "Item": encode({**keys.email_guard(new_email), "entity": "EMAIL", "user_id": user_id})}},
                {"Delete": {"TableName": self.table, "Key": encode(keys.email_guard(current.email))}},
            ]
        try:
            self.dynamo.transact(actions)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise DuplicateError("Email already exists", field="email") from exc
            if codes and codes[0] == "ConditionalCheckFailed":
                return self.update_profile(user_id, changes, mirror_of=mirror_of)  # raced; reread
            raise
        updated = self.get_by_id(user_id)
        if updated is not None and token is not None:
            after_commit(f"user {user_id}", rewrite_copies, self.dynamo, "seller", user_id,
                         {"seller_email": updated.email}, token)
        return updated

    def _update_if_unchanged(self, user_id: int, current: User, changes: dict, mirror_of: User | None,
                             token: str | None) -> dict:
        """The user's update, conditioned on the email read (or the guards would drift) and, for
        a copy, on holding an older version than MySQL's."""
        updated_at = mirror_of.updated_at if mirror_of else utcnow()
        sets, removes = ["#u = :u"], []
        names = {"#u": "updated_at", "#e": "email"}
        values = {":u": iso(updated_at), ":old": current.email}
        condition = "attribute_exists(PK) AND #e = :old"
        if mirror_of is not None:  # MySQL's version, kept only over an older one
            newer, vnames, vvalues = newer_than_held(mirror_of.version)
            sets.append("#ver = :ver")
            condition += f" AND {newer}"
        else:
            bump, vnames, vvalues = next_version()
            sets.append(bump)
        names.update(vnames)
        values.update(vvalues)
        if token is not None:
            sets.append("#t = :t")
            names["#t"], values[":t"] = PENDING, token
        for k, v in changes.items():
            names[f"#{k}"] = k
            if v is None:
                removes.append(f"#{k}")
            else:
                sets.append(f"#{k} = :{k}")
                values[f":{k}"] = v
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return {"Update": {"TableName": self.table, "Key": encode(keys.user(user_id)),
                           "UpdateExpression": expression, "ConditionExpression": condition,
                           "ExpressionAttributeNames": names, "ExpressionAttributeValues": encode(values)}}

    def set_seller(self, user_id: int, is_seller: bool = True, *, mirror_of: User | None = None) -> User | None:
        if mirror_of is not None:  # the whole user as MySQL has it: a copy carries its version
            return self.update_profile(user_id, {}, mirror_of=mirror_of)
        version, names, values = next_version()
        try:
            r = self.dynamo.call(
                "update_item", TableName=self.table, Key=encode(keys.user(user_id)),
                UpdateExpression=f"SET is_seller = :s, updated_at = :u, {version}",
                ConditionExpression="attribute_exists(PK)", ExpressionAttributeNames=names,
                ExpressionAttributeValues=encode({":s": bool(is_seller), ":u": iso(utcnow()), **values}),
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if condition_failed(exc):
                return None
            raise
        return to_user(decode(r["Attributes"]))

    def _via_guard(self, key: dict) -> User | None:
        guard = self.dynamo.get(self.table, key)
        return self.get_by_id(int(guard["user_id"])) if guard else None
