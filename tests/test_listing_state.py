"""Stateful property test: through any sequence of product creates, moves and deletes, category
renames and seller email changes, written to MySQL and mirrored to DynamoDB as a dual write does,
DynamoDB's listing totals and pages and the names copied into its products equal MySQL's."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from shop import Repositories
from shop.aspects.compare import diff
from shop.domain import NewProduct, NewUser, ProductFilters

from .conftest import unique


@pytest.fixture
def stores(db, dynamo):
    return Repositories.mysql(db), Repositories.dynamodb(dynamo)


def test_listings_and_copies_follow_every_write(stores):
    mysql, ddb = stores

    class Catalog(RuleBasedStateMachine):
        @initialize()
        def world(self):
            self.sellers, self.categories, self.products = [], [], []
            for _ in range(2):
                s = mysql.users.create(NewUser(username=unique(), email=unique() + "@x.com", password_hash="h"))
                self.sellers.append(ddb.users.create(NewUser(s.username, s.email, "h"), mirror_of=s).id)
            root = mysql.categories.create(unique("Root "), None)
            child = mysql.categories.create(unique("Child "), root.id)
            other = mysql.categories.create(unique("Other "), None)
            for c in (root, child, other):
                ddb.categories.create(c.name, c.parent_id, mirror_of=c)
                self.categories.append(c.id)

        @rule(seller=st.integers(0, 1), category=st.integers(0, 2), price=st.integers(1, 50))
        def create(self, seller, category, price):
            new = NewProduct(category_id=self.categories[category], name=unique("P "), price=Decimal(price),
                             inventory_quantity=price % 3)
            made = mysql.products.create(self.sellers[seller], new)
            assert not diff(made, ddb.products.create(self.sellers[seller], new, mirror_of=made))
            self.products.append(made.id)

        @precondition(lambda self: self.products)
        @rule(which=st.integers(0, 100), category=st.integers(0, 2))
        def move(self, which, category):
            pid = self.products[which % len(self.products)]
            moved = mysql.products.update(pid, {"category_id": self.categories[category]})
            ddb.products.update(pid, {"category_id": self.categories[category]}, mirror_of=moved)

        @precondition(lambda self: self.products)
        @rule(which=st.integers(0, 100))
        def delete(self, which):
            pid = self.products.pop(which % len(self.products))
            assert mysql.products.delete(pid) is ddb.products.delete(pid) is True

        @precondition(lambda self: self.products)
        @rule(which=st.integers(0, 100))
        def rename(self, which):
            """Rename the category of a product (so there is something to rewrite)."""
            category = mysql.products.get_by_id(self.products[which % len(self.products)]).category_id
            renamed = mysql.categories.update(category, {"name": unique("Renamed ")})
            ddb.categories.update(renamed.id, {"name": renamed.name}, mirror_of=renamed)

        @precondition(lambda self: self.products)
        @rule(which=st.integers(0, 100))
        def change_email(self, which):
            seller = mysql.products.get_by_id(self.products[which % len(self.products)]).seller_id
            changed = mysql.users.update_profile(seller, {"email": unique() + "@y.com"})
            ddb.users.update_profile(changed.id, {"email": changed.email}, mirror_of=changed)

        @invariant()
        def same_listings_and_names(self):
            scopes = [ProductFilters(seller_id=s) for s in self.sellers] + \
                     [ProductFilters(category_id=c) for c in self.categories]
            for filters in scopes:
                for page in (1, 2):
                    m, d = mysql.products.list_products(filters, page, 2), ddb.products.list_products(filters, page, 2)
                    assert m.total == d.total and not diff(m, d), (filters, page, m.total, d.total)

    # No shrinking: against DynamoDB Local it takes minutes, and the failing steps are printed anyway.
    Catalog.TestCase.settings = settings(max_examples=8, stateful_step_count=10, deadline=None, database=None,
                                         suppress_health_check=list(HealthCheck),
                                         phases=(Phase.explicit, Phase.reuse, Phase.generate))
    Catalog.TestCase().runTest()
