"""The DynamoDB tables: one definition used by the code, the CLI, the contract test and infra/.

Four tables, each holding the entities that are read together (docs/data-model.md):
users (users, uniqueness guards, cart lines), catalog (categories, products),
orders (orders with their items), counters (ID allocation for DynamoDB-only writes).
"""
from __future__ import annotations

from .errors import error_code

PRODUCT_SHARDS = 4  # GSI3 spreads "all products, newest first" over this many partitions

SPEC = {
    "users": {"sk": True, "gsis": {"GSI1": ("GSI1PK", "GSI1SK")}},
    "catalog": {"sk": True, "gsis": {"GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK"),
                                     "GSI3": ("GSI3PK", "GSI3SK")}},
    "orders": {"sk": True, "gsis": {"GSI1": ("GSI1PK", "GSI1SK")}},
    "counters": {"sk": False, "gsis": {}},
}


def key_names(name: str) -> list[str]:
    """The table's primary key attributes."""
    return ["PK", "SK"] if SPEC[name]["sk"] else ["PK"]


def definition(prefix: str, name: str) -> dict:
    spec = SPEC[name]
    keys = list(zip(key_names(name), ("HASH", "RANGE")))
    attrs = {k for k, _ in keys} | {a for pair in spec["gsis"].values() for a in pair}
    d = {
        "TableName": f"{prefix}-{name}",
        "KeySchema": [{"AttributeName": k, "KeyType": t} for k, t in keys],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attrs)],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec["gsis"]:
        d["GlobalSecondaryIndexes"] = [
            {"IndexName": idx, "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"},
                                             {"AttributeName": sk, "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "ALL"}}
            for idx, (pk, sk) in spec["gsis"].items()]
    return d


def create_tables(dynamo) -> list[str]:
    """Create the missing tables and wait until all are active; returns those created."""
    created = []
    for name in SPEC:
        d = definition(dynamo.prefix, name)
        try:
            dynamo.client.create_table(**d)
            created.append(d["TableName"])
        except Exception as exc:  # ResourceInUseException: it exists already
            if error_code(exc) != "ResourceInUseException":
                raise
    waiter = dynamo.client.get_waiter("table_exists")
    for name in SPEC:
        waiter.wait(TableName=dynamo.table(name), WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return created


def delete_tables(dynamo) -> list[str]:
    deleted = []
    for name in SPEC:
        try:
            dynamo.client.delete_table(TableName=dynamo.table(name))
            deleted.append(dynamo.table(name))
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
    waiter = dynamo.client.get_waiter("table_not_exists")
    for table in deleted:
        waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return deleted
