"""Categories have owners: a seller changes only the categories they created, and only while no
other seller's products rely on them; the shop's own categories are changed by operators (CLI).
The reference backend lets any seller rename or delete any category (docs/api.md)."""
from __future__ import annotations

from shop import Repositories

from .conftest import unique


def test_a_seller_cannot_rename_or_delete_anothers_category(api):
    _, owner = api.register(seller=True)
    _, other = api.register(seller=True)
    books = api.category(owner)
    rename = api.call("PUT", f"/api/categories/{books['id']}", other, {"name": "Books - closed, buy at evil.example"})
    delete = api.call("DELETE", f"/api/categories/{books['id']}", other)
    assert (rename.status_code, delete.status_code) == (403, 403), (rename.get_json(), delete.get_json())
    assert "created this category" in rename.get_json()["error"]["message"]
    assert api.call("GET", f"/api/categories/{books['id']}").get_json()["data"]["category"]["name"] == books["name"]
    renamed = api.call("PUT", f"/api/categories/{books['id']}", owner, {"name": books["name"] + " and more"})
    assert renamed.status_code == 200


def test_an_owner_cannot_rename_a_category_others_sell_in(api):
    _, owner = api.register(seller=True)
    _, other = api.register(seller=True)
    shared = api.category(owner)
    api.product(other, shared["id"])  # another seller relies on its name now
    r = api.call("PUT", f"/api/categories/{shared['id']}", owner, {"name": unique("Renamed ")})
    assert r.status_code == 403 and "Other sellers' products" in r.get_json()["error"]["message"]


def test_the_shops_own_categories_are_the_operators(app, api, db):
    _, seller = api.register(seller=True)
    shop_owned = Repositories.mysql(db).categories.create(unique("Shop "), None)  # as seeded: no owner
    assert api.call("PUT", f"/api/categories/{shop_owned.id}", seller, {"name": "Mine now"}).status_code == 403
    assert api.call("DELETE", f"/api/categories/{shop_owned.id}", seller).status_code == 403
    runner = app.test_cli_runner()
    renamed = runner.invoke(args=["category", "rename", str(shop_owned.id), shop_owned.name + " (shop)"])
    assert renamed.exit_code == 0, renamed.output
    assert api.call("GET", f"/api/categories/{shop_owned.id}").get_json()["data"]["category"]["name"].endswith("(shop)")


def test_operators_hand_a_category_to_a_seller(app, api):
    user, seller = api.register(seller=True)
    _, first = api.register(seller=True)
    made = api.category(first)
    runner = app.test_cli_runner()
    handed = runner.invoke(args=["category", "owner", str(made["id"]), user["username"]])
    assert handed.exit_code == 0, handed.output
    assert api.call("PUT", f"/api/categories/{made['id']}", first, {"name": unique("X ")}).status_code == 403
    assert api.call("PUT", f"/api/categories/{made['id']}", seller, {"name": unique("Y ")}).status_code == 200
    refused = runner.invoke(args=["category", "owner", str(made["id"]), "no-such-seller"])
    assert refused.exit_code == 1 and "not a seller" in refused.output


def test_the_owner_is_copied_with_the_category_into_dynamodb(app, api, db, dynamo):
    from shop.aspects import PRESETS, use_flags
    user, seller = api.register(seller=True)
    with use_flags(PRESETS[1].flags):  # phase 2: dual write
        made = app.extensions["shop"].services.categories.create({"name": unique("Owned ")}, user["id"])
    assert Repositories.dynamodb(dynamo).categories.get_by_id(made.id).owner_id == user["id"]
    assert Repositories.mysql(db).categories.get_by_id(made.id).owner_id == user["id"]
