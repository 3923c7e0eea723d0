"""/api/auth and /api/seller."""
from __future__ import annotations

from flask import Blueprint, g

from . import serialize
from .common import auth_required, body, ok, seller_required, services

auth_bp = Blueprint("api_auth", __name__, url_prefix="/api/auth")
seller_bp = Blueprint("api_seller", __name__, url_prefix="/api/seller")


@auth_bp.post("/register")
def register():
    user, token = services().auth.register(body())
    return ok({"user": serialize.user(user), "token": token}, 201, "User registered successfully")


@auth_bp.post("/login")
def login():
    user, token = services().auth.login(body())
    return ok({"user": serialize.user(user), "token": token}, message="Login successful")


@auth_bp.get("/profile")
@auth_required
def profile():
    user = services().auth.profile(g.user_id)
    return ok({"user": serialize.user(user)}, message="Profile retrieved successfully")


@auth_bp.put("/profile")
@auth_required
def update_profile():
    user = services().auth.update_profile(g.user_id, body())
    return ok(serialize.user(user), message="Profile updated successfully")


@auth_bp.post("/upgrade-seller")
@auth_required
def upgrade_seller():
    user = services().auth.upgrade_to_seller(g.user_id)
    return ok(serialize.user(user), message="Successfully upgraded to seller account")


@auth_bp.post("/logout")
@auth_required
def logout():
    # Tokens are stateless; the client forgets its token.
    return ok(message="Logged out successfully")


@auth_bp.get("/verify")
@auth_required
def verify():
    user = services().auth.profile(g.user_id)
    return ok({"user": serialize.user(user), "valid": True}, message="Token is valid")


@seller_bp.post("/upgrade")
@auth_required
def seller_upgrade():
    user = services().auth.upgrade_to_seller(g.user_id)
    return ok({"user": serialize.user(user), "message": "Successfully upgraded to seller account"})


@seller_bp.get("/profile")
@seller_required
def seller_profile():
    return ok({"seller": serialize.user(g.seller)})


@seller_bp.get("/dashboard")
@seller_required
def seller_dashboard():
    stats = services().products.stats(g.seller.id)
    return ok({"seller": serialize.user(g.seller),
               "dashboard": {"totalProducts": stats.total_products, "inStockProducts": stats.in_stock_products,
                             "outOfStockProducts": stats.out_of_stock_products,
                             "totalInventoryValue": float(stats.total_inventory_value),
                             "totalOrders": 0, "totalRevenue": 0, "pendingOrders": 0},
               "message": "Seller dashboard retrieved successfully"})


@seller_bp.put("/profile")
@seller_required
def seller_update_profile():
    user = services().auth.update_profile(g.user_id, body())
    return ok({"seller": serialize.user(user), "message": "Seller profile updated successfully"})
