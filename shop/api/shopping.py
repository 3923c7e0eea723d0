"""/api/cart and /api/orders."""
from __future__ import annotations

from flask import Blueprint, g, request

from ..errors import ValidationError
from ..services.catalog import page_args
from ..services.validation import parse_int, positive_id
from . import serialize
from .common import auth_required, body, ok, services

cart_bp = Blueprint("api_cart", __name__, url_prefix="/api/cart")
orders_bp = Blueprint("api_orders", __name__, url_prefix="/api/orders")


def _cart(cart, message, status=200):
    return ok({"cart": serialize.cart(cart), "message": message}, status)


@cart_bp.get("")
@cart_bp.get("/")
@auth_required
def get_cart():
    return _cart(services().cart.get(g.user_id), "Cart retrieved successfully")


@cart_bp.post("/items")
@auth_required
def add_item():
    return _cart(services().cart.add(g.user_id, body()), "Item added to cart successfully", 201)


@cart_bp.put("/items/<product_id>")
@auth_required
def update_item(product_id):
    pid = positive_id(product_id, "product ID")
    return _cart(services().cart.update(g.user_id, pid, body()), "Cart item updated successfully")


@cart_bp.delete("/items/<product_id>")
@auth_required
def remove_item(product_id):
    pid = positive_id(product_id, "product ID")
    return _cart(services().cart.remove(g.user_id, pid), "Item removed from cart successfully")


@cart_bp.delete("")
@cart_bp.delete("/")
@auth_required
def clear_cart():
    services().cart.clear(g.user_id)
    return ok({"message": "Cart cleared successfully"})


@cart_bp.get("/summary")
@auth_required
def cart_summary():
    cart = services().cart.get(g.user_id)
    return ok({"summary": serialize.cart_summary(cart), "message": "Cart summary retrieved successfully"})


@cart_bp.get("/validate")
@auth_required
def validate_cart():
    issues = services().cart.get(g.user_id).issues
    return ok({"validation": {"valid": not issues, "issues": issues},
               "message": "Cart has inventory issues" if issues else "Cart inventory is valid"})


@orders_bp.post("/checkout")
@auth_required
def checkout():
    order, payment = services().orders.checkout(g.user_id, body())
    return ok({"order": serialize.order(order),
               "payment": {"success": payment.success, "transactionId": payment.transaction_id},
               "message": "Order created successfully"}, 201)


@orders_bp.get("/checkout/validate")
@auth_required
def validate_checkout():
    validation = services().orders.validate(g.user_id)
    return ok({"validation": validation,
               "message": "Checkout is available" if validation["eligible"] else "Checkout validation failed"})


@orders_bp.get("")
@orders_bp.get("/")
@auth_required
def list_orders():
    page, limit = page_args(request.args)
    result = services().orders.list(g.user_id, page, limit)
    return ok({"orders": [serialize.order(o) for o in result.items],
               "pagination": {"total": result.total, "page": page, "limit": limit,
                              "totalPages": result.total_pages},
               "message": "Orders retrieved successfully"})


@orders_bp.get("/user/summary")
@auth_required
def order_summary():
    return ok({"summary": services().orders.summary(g.user_id), "message": "Order summary retrieved successfully"})


@orders_bp.get("/user/recent")
@auth_required
def recent_orders():
    limit = parse_int(request.args.get("limit", "5"))
    limit = 5 if limit is None or limit < 1 else min(limit, 20)
    orders = services().orders.recent(g.user_id, limit)
    return ok({"orders": [serialize.order(o) for o in orders], "message": "Recent orders retrieved successfully"})


@orders_bp.get("/user/search")
@auth_required
def search_orders():
    term = (request.args.get("q") or "").strip()
    if not term:
        raise ValidationError("Search term is required")
    if len(term) > 100:
        raise ValidationError("Search term is too long")
    orders = services().orders.search(g.user_id, term)
    return ok({"orders": [serialize.order(o) for o in orders], "searchTerm": term,
               "message": "Order search completed successfully"})


@orders_bp.get("/<order_id>")
@auth_required
def get_order(order_id):
    order = services().orders.get(positive_id(order_id, "order ID"), g.user_id)
    return ok({"order": serialize.order(order), "message": "Order retrieved successfully"})


@orders_bp.put("/<order_id>/cancel")
@auth_required
def cancel_order(order_id):
    services().orders.cancel(positive_id(order_id, "order ID"), g.user_id)
    return ok({"message": "Order cancelled successfully"})


@orders_bp.put("/<order_id>/status")
@auth_required
def update_status(order_id):
    oid = positive_id(order_id, "order ID")
    services().orders.set_status(oid, g.user_id, body().get("status"))
    return ok({"message": "Order status updated successfully"})
