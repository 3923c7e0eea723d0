"""/api/products and /api/categories."""
from __future__ import annotations

import re
import time

from flask import Blueprint, g, request

from ..errors import ValidationError
from ..services.validation import positive_id
from . import serialize
from .common import body, ok, seller_required, services

products_bp = Blueprint("api_products", __name__, url_prefix="/api/products")
categories_bp = Blueprint("api_categories", __name__, url_prefix="/api/categories")
_IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}\.(jpg|jpeg|png|gif|webp)$", re.IGNORECASE)


@products_bp.get("")
@products_bp.get("/")
def list_products():
    page = services().products.list(request.args)
    return ok(serialize.product_page(page, message="Products retrieved successfully"))


@products_bp.get("/search")
def search_products():
    term = request.args.get("q")
    page = services().products.search(term, request.args)
    return ok(serialize.product_page(page, search_term=term.strip(),
                                     message="Product search completed successfully"))


@products_bp.get("/category/<category_id>")
def products_by_category(category_id):
    cid = positive_id(category_id, "category ID")
    page = services().products.by_category(cid, request.args)
    return ok(serialize.product_page(page, category_id=cid, message="Category products retrieved successfully"))


@products_bp.get("/seller/my-products")
@seller_required
def my_products():
    page = services().products.by_seller(g.seller.id, request.args)
    return ok(serialize.product_page(page, message="Seller products retrieved successfully"))


@products_bp.get("/seller/stats")
@seller_required
def seller_stats():
    s = services().products.stats(g.seller.id)
    return ok({"stats": {"total_products": s.total_products, "in_stock_products": s.in_stock_products,
                         "out_of_stock_products": s.out_of_stock_products,
                         "total_inventory_value": float(s.total_inventory_value)},
               "message": "Seller statistics retrieved successfully"})


@products_bp.post("/upload-image")
@seller_required
def upload_image():
    data = body()
    if not data.get("file") or not data.get("filename"):
        raise ValidationError("File and filename are required")
    filename = data["filename"]
    if not isinstance(filename, str) or not _IMAGE_NAME.match(filename):
        raise ValidationError("Invalid file type. Only image files are allowed.")
    return ok({"imageUrl": f"/images/products/{int(time.time() * 1000)}_{filename}",
               "message": "Image uploaded successfully"})


@products_bp.get("/<product_id>")
def get_product(product_id):
    product = services().products.get(positive_id(product_id, "product ID"))
    return ok({"product": serialize.product(product), "message": "Product retrieved successfully"})


@products_bp.post("")
@products_bp.post("/")
@seller_required
def create_product():
    product = services().products.create(g.seller.id, body())
    return ok({"product": serialize.product(product), "message": "Product created successfully"}, 201)


@products_bp.put("/<product_id>")
@seller_required
def update_product(product_id):
    product = services().products.update(positive_id(product_id, "product ID"), g.seller.id, body())
    return ok({"product": serialize.product(product), "message": "Product updated successfully"})


@products_bp.delete("/<product_id>")
@seller_required
def delete_product(product_id):
    services().products.delete(positive_id(product_id, "product ID"), g.seller.id)
    return ok({"message": "Product deleted successfully"})


@products_bp.put("/<product_id>/inventory")
@seller_required
def update_inventory(product_id):
    services().products.set_inventory(positive_id(product_id, "product ID"), g.seller.id, body())
    return ok({"message": "Inventory updated successfully"})


def _categories(items, **extra):
    data = [serialize.category(c) for c in items]
    return ok({"categories": data, "count": len(data), **extra})


@categories_bp.get("/search")
def search_categories():
    term = request.args.get("q")
    found = services().categories.search(term)
    return _categories(found, search_term=term, message="Category search completed successfully")


@categories_bp.get("/flat")
def flat_categories():
    return _categories(services().categories.flat(), message="Categories retrieved successfully")


@categories_bp.get("/roots")
def root_categories():
    return _categories(services().categories.roots(),
                       message="Root categories retrieved successfully")


@categories_bp.get("/<category_id>/children")
def child_categories(category_id):
    pid = positive_id(category_id, "parent category ID")
    return _categories(services().categories.children(pid), parent_id=pid,
                       message="Child categories retrieved successfully")


@categories_bp.get("/<category_id>/path")
def category_path(category_id):
    path = services().categories.path(positive_id(category_id, "category ID"))
    return ok({"path": [serialize.category(c) for c in path], "depth": len(path),
               "message": "Category path retrieved successfully"})


@categories_bp.get("/<category_id>")
def get_category(category_id):
    category = services().categories.get(positive_id(category_id, "category ID"))
    return ok({"category": serialize.category(category), "message": "Category retrieved successfully"})


@categories_bp.get("")
@categories_bp.get("/")
def category_tree():
    return ok({"categories": serialize.tree(services().categories.tree()),
               "message": "Categories retrieved successfully"})


@categories_bp.post("")
@categories_bp.post("/")
@seller_required
def create_category():
    category = services().categories.create(body(), g.seller.id)
    return ok({"category": serialize.category(category), "message": "Category created successfully"}, 201)


@categories_bp.put("/<category_id>")
@seller_required
def update_category(category_id):
    category = services().categories.update(positive_id(category_id, "category ID"), body(), g.seller.id)
    return ok({"category": serialize.category(category), "message": "Category updated successfully"})


@categories_bp.delete("/<category_id>")
@seller_required
def delete_category(category_id):
    services().categories.delete(positive_id(category_id, "category ID"), g.seller.id)
    return ok({"message": "Category deleted successfully"})
