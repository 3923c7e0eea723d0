"""migrationContract.json, infra/dynamodb.yaml and the tables the code creates must agree."""
from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml

from shop import Repositories
from shop.domain import NewProduct, NewUser
from shop.repositories.dynamodb.tables import SPEC, definition

from .conftest import unique

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = json.loads((ROOT / "migrationContract.json").read_text())
TEMPLATE = ROOT / "infra" / "dynamodb.yaml"


def contract_table(name):
    return next(t for t in CONTRACT["tables"] if t["table"] == f"shop-{name}")


def test_contract_is_valid_against_the_workshop_schema():
    schema = json.loads((ROOT / "docs" / "reference" / "migration_contract_schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(CONTRACT)
    assert sorted(t["table"] for t in CONTRACT["tables"]) == sorted(f"shop-{n}" for n in SPEC)


@pytest.mark.parametrize("name", list(SPEC))
def test_created_tables_match_the_contract(store_dynamo, name):
    described = store_dynamo.client.describe_table(TableName=store_dynamo.table(name))["Table"]
    table = contract_table(name)
    keys = {k["KeyType"]: k["AttributeName"] for k in described["KeySchema"]}
    assert keys.get("HASH") == table["pk"] and keys.get("RANGE") == table.get("sk")
    created = {g["IndexName"]: ({k["KeyType"]: k["AttributeName"] for k in g["KeySchema"]},
                                g["Projection"]["ProjectionType"])
               for g in described.get("GlobalSecondaryIndexes", [])}
    promised = {g["index_name"]: ({"HASH": g["pk"], "RANGE": g["sk"]}, g["projection"])
                for g in table.get("gsis", [])}
    assert created == promised


def test_items_written_by_the_code_use_only_contract_attributes(store_dynamo):
    ddb = Repositories.dynamodb(store_dynamo)
    seller = ddb.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h",
                                      first_name="A", last_name="B"))
    cat = ddb.categories.create(unique("C "), None)
    sub = ddb.categories.create(unique("S "), cat.id)
    product = ddb.products.create(seller.id, NewProduct(category_id=sub.id, name="n", price=Decimal("1.50"),
                                                        inventory_quantity=3, description="d", image_url="/i.png"))
    ddb.carts.add_item(seller.id, product.id, 1)
    ddb.orders.checkout(seller.id)
    ddb.carts.add_item(seller.id, product.id, 1)  # a cart line that stays
    from shop.repositories.dynamodb import IdAllocator
    IdAllocator(store_dynamo).allocate("order")
    allowed = {}
    for t in CONTRACT["tables"]:
        for e in t.get("entities") or [{"entity_type": None, "attributes": t["attributes"]}]:
            allowed[(t["table"].removeprefix("shop-"), e["entity_type"])] = {a["name"] for a in e["attributes"]}
    seen = set()
    for name in SPEC:
        for item in store_dynamo.client.scan(TableName=store_dynamo.table(name))["Items"]:
            entity = item.get("entity", {}).get("S")
            key = (name, entity if (name, entity) in allowed else None)
            if key not in allowed and name != "counters":
                key = (name, {"USERNAME": "USERNAME_GUARD", "EMAIL": "EMAIL_GUARD",
                                   "CATEGORYNAME": "CATEGORY_NAME_GUARD"}.get(entity))
            assert set(item) <= allowed[key], (name, entity, set(item) - allowed[key])
            seen.add(key)
    assert len(seen) == 12  # every entity of the contract was exercised


def test_template_passes_cfn_lint():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_tables_match_the_code_and_have_alarms():
    template = yaml.safe_load(TEMPLATE.read_text())
    resources = template["Resources"]
    tables = {r["Properties"]["TableName"]["Fn::Sub"].split("}-")[1]: r["Properties"]
              for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"}
    assert set(tables) == set(SPEC)
    for name, props in tables.items():
        code = definition("shop", name)
        for field in ("KeySchema", "AttributeDefinitions", "BillingMode"):
            assert props[field] == code[field], (name, field)
        assert props.get("GlobalSecondaryIndexes", []) == code.get("GlobalSecondaryIndexes", [])
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    metrics = {(a["MetricName"], (a.get("Dimensions") or [{}])[0].get("Value", {}).get("Ref")) for a in alarms}
    for name in SPEC:
        logical = name.capitalize() + "Table"
        assert ("ThrottledRequests", logical) in metrics and ("SystemErrors", logical) in metrics
    assert ("UserErrors", None) in metrics
