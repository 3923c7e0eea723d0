"""Both families offer the same classes, public methods and parameters."""
from __future__ import annotations

import inspect

import pytest

from shop.repositories import dynamodb, mysql


@pytest.mark.parametrize("name", mysql.__all__)
def test_same_methods_and_parameters(name):
    ours, theirs = getattr(mysql, name), getattr(dynamodb, name)
    public = lambda cls: {m for m, f in inspect.getmembers(cls, inspect.isfunction)  # noqa: E731
                          if not m.startswith("_")}
    assert public(ours) == public(theirs)
    for method in public(ours):
        mine = [p for p in inspect.signature(getattr(ours, method)).parameters.values()]
        other = [p for p in inspect.signature(getattr(theirs, method)).parameters.values()]
        # DynamoDB may add keyword-only parameters (mirror_of), never change the shared ones.
        shared = [p for p in other if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        assert [(p.name, p.default) for p in mine] == [(p.name, p.default) for p in shared], (name, method)
        assert all(p.default is None for p in other if p.kind is inspect.Parameter.KEYWORD_ONLY)


def test_dynamodb_writes_accept_mirror_of():
    writes = {"UserRepository": ["create", "update_profile", "set_seller"],
              "CategoryRepository": ["create", "update"],
              "ProductRepository": ["create", "update", "set_inventory"],
              "ShoppingCartRepository": ["add_item", "set_quantity"],
              "OrderRepository": ["checkout", "set_status", "cancel"]}
    for cls, methods in writes.items():
        for m in methods:
            assert "mirror_of" in inspect.signature(getattr(getattr(dynamodb, cls), m)).parameters, (cls, m)
