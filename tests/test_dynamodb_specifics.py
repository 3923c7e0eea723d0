"""What only the DynamoDB family has: idempotency tokens, guards under races, pagination,
batch retries, the size guard, retry policy and the production client configuration.

DynamoDB Local never throttles, never leaves batch items unprocessed and never raises
transaction conflicts. Where a test needs one of those, a botocore event hook rewrites the
real response of the real call (fault injection); the data always comes from DynamoDB Local.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import replace
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from shop import Repositories
from shop.domain import NewProduct, NewUser
from shop.errors import DuplicateError
from shop.repositories.dynamodb import Dynamo, keys
from shop.repositories.dynamodb.client import encode, make_client
from shop.repositories.dynamodb.errors import DynamoDBError, ItemTooLargeError, TransactionConflictError

from .conftest import unique


@pytest.fixture
def ddb(store_dynamo):
    return Repositories.dynamodb(store_dynamo)


class Calls:
    """Counts (and optionally rewrites) real DynamoDB calls through botocore's event system."""

    def __init__(self, client, operation):
        self.client, self.operation, self.params = client, operation, []
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", self._record)

    def _record(self, params, **kwargs):
        self.params.append(copy.deepcopy(params))

    def close(self):
        self.client.meta.events.unregister(f"provide-client-params.dynamodb.{self.operation}", self._record)


@pytest.fixture
def calls(store_dynamo):
    opened = []

    def watch(operation):
        c = Calls(store_dynamo.client, operation)
        opened.append(c)
        return c
    yield watch
    for c in opened:
        c.close()


def world(ddb, stock=5):
    seller = ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    cat = ddb.categories.create(unique("C "), None)
    product = ddb.products.create(seller.id, NewProduct(category_id=cat.id, name=unique("P "),
                                                        price=Decimal("9.99"), inventory_quantity=stock))
    buyer = ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    return seller, cat, product, buyer


def test_checkout_retry_with_the_same_token_applies_once(ddb, store_dynamo, calls):
    _, _, product, buyer = world(ddb)
    ddb.carts.add_item(buyer.id, product.id, 2)
    sent = calls("TransactWriteItems")
    ddb.orders.checkout(buyer.id)
    request = sent.params[-1]
    assert request["ClientRequestToken"].startswith("co-")
    store_dynamo.client.transact_write_items(**request)  # a client retry of the same request
    assert ddb.products.get_by_id(product.id).inventory_quantity == 3
    assert ddb.orders.list_by_user(buyer.id).total == 1


def test_checkout_tokens_are_per_operation_not_per_order_id(ddb, store_dynamo, calls):
    """A restored database hands out an order id again: DynamoDB must not refuse that checkout
    as a replay of the earlier one (it remembers tokens for 10 minutes)."""
    _, _, product, buyer = world(ddb)
    sent = calls("TransactWriteItems")
    ddb.carts.add_item(buyer.id, product.id, 1)
    first = ddb.orders.checkout(buyer.id)
    store_dynamo.call("delete_item", TableName=store_dynamo.table("orders"), Key=encode(keys.order(first.id)))
    store_dynamo.call("put_item", TableName=store_dynamo.table("counters"),
                      Item=encode({"PK": "COUNTER#order", "value": first.id - 1}))  # as a restore would
    ddb.carts.add_item(buyer.id, product.id, 1)
    again = ddb.orders.checkout(buyer.id)
    assert again.id == first.id and again.items[0].quantity == 1
    tokens = [p["ClientRequestToken"] for p in sent.params if "ClientRequestToken" in p]
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    assert ddb.products.get_by_id(product.id).inventory_quantity == 3


def test_a_lagging_counter_never_reuses_a_taken_id(ddb, store_dynamo):
    """Ids mirrored from MySQL above the counter: a DynamoDB-only create skips them instead of
    answering 409 "User N already exists" (or worse, taking the other user's id)."""
    counter = ddb.users.ids.current("user")
    taken = ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"),
                             mirror_of=_user_like(counter + 1))
    fresh = ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    assert fresh.id != taken.id and fresh.id > counter
    assert ddb.users.get_by_id(taken.id).username == taken.username


def _user_like(user_id):
    from datetime import datetime

    from shop.domain import User
    now = datetime(2026, 1, 1)
    return User(id=user_id, username=unique(), email=unique() + "@x.com", password_hash="h", first_name=None,
                last_name=None, is_seller=False, created_at=now, updated_at=now)


def test_uniqueness_holds_under_a_race(ddb):
    name, results, barrier = unique(), [], threading.Barrier(6)

    def register(i):
        barrier.wait()
        try:
            results.append(ddb.users.create(NewUser(username=name.upper() if i % 2 else name,
                                                    email=f"{unique()}@x.com", password_hash="h")))
        except DuplicateError as exc:
            results.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(results) == 6 and len(winners) == 1
    assert all(r.field == "username" for r in results if isinstance(r, DuplicateError))
    assert ddb.users.get_by_username(name).id == winners[0].id


def test_email_guard_moves_with_the_email(ddb):
    u = ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    new_email = unique() + "@y.com"
    ddb.users.update_profile(u.id, {"email": new_email})
    assert ddb.users.get_by_email(u.email) is None and ddb.users.get_by_email(new_email).id == u.id
    other = ddb.users.create(NewUser(username=unique(), email=u.email, password_hash="h"))  # old one is free
    with pytest.raises(DuplicateError):
        ddb.users.update_profile(other.id, {"email": new_email.upper()})


def test_queries_follow_last_evaluated_key(ddb, store_dynamo, calls):
    seller, cat, _, _ = world(ddb)
    for i in range(4):
        ddb.products.create(seller.id, NewProduct(category_id=cat.id, name=f"n{i}", price=Decimal(1),
                                                  inventory_quantity=1))
    queries = calls("Query")
    items = store_dynamo.query_all(TableName=store_dynamo.table("catalog"), IndexName="GSI1", Limit=2,
                             KeyConditionExpression="GSI1PK = :pk",
                             ExpressionAttributeValues=encode({":pk": f"SELLER#{seller.id}"}))
    assert len(items) == 5 and len(queries.params) == 3
    assert "ExclusiveStartKey" in queries.params[1]


def test_batch_get_retries_unprocessed_keys(ddb, store_dynamo, calls):
    seller, cat, _, _ = world(ddb)
    made = [ddb.products.create(seller.id, NewProduct(category_id=cat.id, name=f"b{i}", price=Decimal(1),
                                                      inventory_quantity=1)) for i in range(5)]
    table = store_dynamo.table("catalog")
    state = {"rewritten": 0}

    def leave_some_unprocessed(parsed, **kwargs):
        got = parsed.get("Responses", {}).get(table, [])
        if state["rewritten"] < 2 and len(got) > 1:
            state["rewritten"] += 1
            keep, drop = got[:1], got[1:]
            parsed["Responses"][table] = keep
            parsed["UnprocessedKeys"] = {table: {"Keys": [{"PK": i["PK"], "SK": i["SK"]} for i in drop],
                                                 "ConsistentRead": True}}

    store_dynamo.client.meta.events.register("after-call.dynamodb.BatchGetItem", leave_some_unprocessed)
    waits = []
    store_dynamo.sleep = waits.append
    try:
        gets = calls("BatchGetItem")
        found = store_dynamo.batch_get(table, [keys.product(p.id) for p in made])
    finally:
        store_dynamo.client.meta.events.unregister("after-call.dynamodb.BatchGetItem", leave_some_unprocessed)
        store_dynamo.sleep = __import__("time").sleep
    assert sorted(int(i["id"]) for i in found) == sorted(p.id for p in made)
    assert len(gets.params) == 3 and len(waits) == 2 and all(0 <= w <= 0.5 for w in waits)


def test_transaction_conflicts_are_retried_then_surface(ddb, store_dynamo):
    _, _, product, buyer = world(ddb)
    state = {"left": 2}

    def conflict(model, params, **kwargs):
        if state["left"] > 0:
            state["left"] -= 1
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                     "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}]}
            raise ClientError(error, "TransactWriteItems")

    store_dynamo.client.meta.events.register("before-call.dynamodb.TransactWriteItems", conflict)
    store_dynamo.sleep = lambda s: None
    try:
        ddb.carts.add_item(buyer.id, product.id, 1)  # two conflicts, then the real call
        assert ddb.carts.get_item(buyer.id, product.id).quantity == 1
        state["left"] = 99
        with pytest.raises(TransactionConflictError):
            ddb.carts.add_item(buyer.id, product.id, 1)
    finally:
        store_dynamo.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", conflict)
        store_dynamo.sleep = __import__("time").sleep
    assert ddb.carts.get_item(buyer.id, product.id).quantity == 1


def test_failed_conditions_are_not_retried(ddb, calls):
    u = ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    sent = calls("TransactWriteItems")
    with pytest.raises(DuplicateError) as err:
        ddb.users.create(NewUser(username=u.username, email=unique() + "@x.com", password_hash="h"))
    assert len(sent.params) == 1 and isinstance(err.value.__cause__, ClientError)


def test_oversized_items_are_refused_before_any_call(ddb, calls):
    seller, cat, _, _ = world(ddb)
    sent = calls("TransactWriteItems")
    with pytest.raises(ItemTooLargeError) as err:
        ddb.products.create(seller.id, NewProduct(category_id=cat.id, name="huge", price=Decimal(1),
                                                  inventory_quantity=1, description="é" * 210_000))
    assert err.value.size > 400 * 1024 and err.value.status == 413 and sent.params == []


def test_unreachable_dynamodb_keeps_cause_and_code(settings):
    down = Dynamo(replace(settings, dynamodb_endpoint="http://127.0.0.1:1", dynamodb_max_attempts=1,
                          dynamodb_connect_timeout=1))
    with pytest.raises(DynamoDBError) as err:
        Repositories.dynamodb(down).users.get_by_id(1)
    assert err.value.code == "EndpointConnectionError" and err.value.cause is not None
    assert err.value.status == 503 and err.value.store == "dynamodb"


def test_production_configuration_uses_aws_defaults(settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-the-environment")
    client = make_client(replace(settings, dynamodb_endpoint=None, aws_region="eu-west-1"))
    assert client.meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
    assert "127.0.0.1" not in client.meta.endpoint_url and "localhost" not in client.meta.endpoint_url
    creds = client._request_signer._credentials
    assert creds.method == "env" and creds.access_key == "AKIDEXAMPLE"
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.retries["total_max_attempts"] == settings.dynamodb_max_attempts
