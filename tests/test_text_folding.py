"""One meaning for text in both stores: for any Unicode a visitor can type, product search,
category lookup by name and category-name uniqueness answer the same in MySQL and DynamoDB,
and a dual read of them reports nothing (hypothesis over real MariaDB and DynamoDB Local).

Before folding was the application's own (shop/text.py), MySQL's LOWER() and Python's lower()
disagreed on 356 characters between U+0080 and U+2FFF: a product named "İstanbul lamp" made
every shopper's search for "istanbul" fail in phase 3.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from shop import Repositories
from shop.aspects import PRESETS, use_flags
from shop.aspects.compare import diff
from shop.domain import NewProduct, NewUser, ProductFilters
from shop.errors import DuplicateError
from shop.text import fold, fold_key

from .conftest import unique

DUAL_READ = PRESETS[2].flags
# What a name can hold: any character but surrogates and controls (validation strips and refuses
# those), weighted towards the ranges where the stores' own case rules disagree.
LETTERS = st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x2FFF)
NAME = st.text(LETTERS, min_size=1, max_size=12).filter(lambda s: s.strip() == s and s.strip())
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def shop(app):
    state = app.extensions["shop"]
    routed, mysql, ddb = state.repos, Repositories.mysql(state.db), Repositories.dynamodb(state.dynamo)
    with use_flags(DUAL_READ):
        seller = routed.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
    return routed, mysql, ddb, seller, state


def test_fold_is_what_both_stores_compare():
    assert fold("İstanbul") == fold("i̇stanbul") == fold("ISTANBUL") == "istanbul"
    assert fold("STRASSE") == fold("straße") and fold("ﬁle") == fold("FILE") and fold("Café") == "cafe"
    assert fold("कुत्ता") != fold("कत्ता")  # other scripts' marks change the word: they stay
    assert fold_key("Ȿ atk") == fold_key("ȿ ATK") and len(fold_key("ﷺ" * 100)) == 64


@SETTINGS
@given(name=NAME, term=NAME)
@example(name="İstanbul lamp", term="istanbul")
@example(name="\u0220 atk", term="\u019e")
@example(name="Straße", term="STRASSE")
def test_search_answers_the_same_in_both_stores(shop, name, term):
    routed, mysql, ddb, seller, state = shop
    with use_flags(DUAL_READ):
        category = routed.categories.create(unique("Search "), None)
        routed.products.create(seller.id, NewProduct(category_id=category.id, name=name, price=Decimal("1.00"),
                                                     inventory_quantity=1, description=f"about {name}"))
        before = state.runtime.stats.snapshot()["comparisons"].get("mismatch", 0)
        filters = ProductFilters(category_id=category.id, search=term)
        routed_page = routed.products.list_products(filters, 1, 20)  # a dual read: raises on a mismatch
    in_mysql, in_ddb = mysql.products.list_products(filters, 1, 20), ddb.products.list_products(filters, 1, 20)
    assert diff(in_mysql, in_ddb) == []
    assert in_mysql.total == (1 if fold(term) in fold(name) or fold(term) in fold(f"about {name}") else 0)
    assert diff(routed_page, in_mysql) == []
    assert state.runtime.stats.snapshot()["comparisons"].get("mismatch", 0) == before


@SETTINGS
@given(name=NAME, other=NAME)
@example(name="\u0220 atk", other="\u019e atk")
@example(name="İstanbul", other="i̇stanbul")
@example(name="Shoes", other="SHOES")
def test_a_category_is_found_by_name_alike_in_both_stores(shop, name, other):
    routed, mysql, ddb, seller, state = shop
    tag = unique(" ")
    with use_flags(DUAL_READ):
        made = routed.categories.create(name + tag, None)
        for variant in {name + tag, (name + tag).upper(), (name + tag).lower(), (name + tag).swapcase(), other + tag}:
            found = routed.categories.get_by_name(variant)  # a dual read: raises on a mismatch
            expected = made.id if fold_key(variant) == fold_key(name + tag) else None
            assert (found.id if found else None) == expected, variant
            for store in (mysql, ddb):
                mine = store.categories.get_by_name(variant)
                assert (mine.id if mine else None) == expected, (store, variant)


@SETTINGS
@given(first=NAME, second=NAME)
@example(first="\u0220 atk", second="\u019e atk")
@example(first="Straße", second="STRASSE")
def test_whether_a_name_is_taken_is_the_same_in_both_stores(shop, store_dynamo, first, second):
    """Each store on its own (no routing): the second name is refused by both, or by neither."""
    _, mysql, _, _, _ = shop
    outcomes = []
    for store in (mysql, Repositories.dynamodb(store_dynamo)):
        tag = unique(" ")
        store.categories.create(first + tag, None)
        try:
            store.categories.create(second + tag, None)
            outcomes.append("free")
        except DuplicateError:
            outcomes.append("taken")
    assert outcomes[0] == outcomes[1] == ("taken" if fold_key(first) == fold_key(second) else "free")
