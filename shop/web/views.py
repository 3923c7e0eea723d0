"""Storefront views; forms post back here and errors are shown next to them."""
from __future__ import annotations

import functools

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for

from ..errors import AuthenticationError, ShopError, ValidationError
from ..services.validation import parse_int, positive_id
from .redirects import referrer_path, same_site_path

bp = Blueprint("web", __name__)


def services():
    return current_app.extensions["shop"].services


@bp.before_app_request
def load_user():
    g.user = None
    user_id = session.get("user_id")
    if user_id is not None and not request.path.startswith(("/api/", "/static/")):
        try:
            g.user = services().auth.find(user_id)
        except ShopError:
            g.user = None
        if g.user is None:
            session.pop("user_id", None)


def login_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if g.user is None:
            flash("Please log in first.")
            return redirect(url_for("web.login", next=request.path))
        return view(*args, **kwargs)
    return wrapper


def seller_required(view):
    @login_required
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not g.user.is_seller:
            flash("That page is for sellers. Become a seller from your cart page first.")
            return redirect(url_for("web.index"))
        return view(*args, **kwargs)
    return wrapper


def _back() -> str:
    return referrer_path(request.referrer, request.host) or url_for("web.index")


def form_error(exc: ShopError):
    """One message per problem, for the page to show."""
    if exc.details:
        for d in exc.details:
            flash(d["msg"] if isinstance(d, dict) else str(d), "error")
    else:
        flash(exc.message, "error")


@bp.get("/")
def index():
    s = services()
    args = request.args.to_dict()
    args.setdefault("limit", "12")
    query = request.args.get("q", "").strip()
    try:
        if query:
            args["search"] = query
        page = s.products.list(args)
    except ValidationError as exc:
        form_error(exc)
        page = s.products.list({"limit": "12"})
    category_id = parse_int(request.args.get("category_id"))
    current = s.categories.find(category_id) if category_id else None
    return render_template("index.html", page=page, tree=s.categories.tree(), query=query, current=current)


@bp.get("/products/<product_id>")
def product(product_id):
    p = services().products.get(positive_id(product_id, "product ID"))
    return render_template("product.html", product=p)


@bp.route("/register", methods=["GET", "POST"])
def register():
    if request.method == "POST":
        try:
            user, _ = services().auth.register(request.form.to_dict())
        except ShopError as exc:
            form_error(exc)
            return render_template("register.html", form=request.form), exc.status
        session.clear()
        session["user_id"] = user.id
        flash(f"Welcome, {user.username}! Your account is ready.")
        return redirect(url_for("web.index"))
    return render_template("register.html", form={})


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        try:
            user, _ = services().auth.login(request.form.to_dict())
        except (ValidationError, AuthenticationError) as exc:
            form_error(exc)
            return render_template("login.html", form=request.form), exc.status
        session.clear()
        session["user_id"] = user.id
        flash(f"Logged in as {user.username}.")
        return redirect(same_site_path(request.args.get("next")) or url_for("web.index"))
    return render_template("login.html", form={})


@bp.post("/logout")
def logout():
    session.clear()
    flash("Logged out.")
    return redirect(url_for("web.index"))


@bp.get("/cart")
@login_required
def cart():
    return render_template("cart.html", cart=services().cart.get(g.user.id))


@bp.post("/cart/add")
@login_required
def cart_add():
    try:
        services().cart.add(g.user.id, {"productId": request.form.get("product_id"),
                                        "quantity": request.form.get("quantity", "1")})
        flash("Added to your cart.")
    except ShopError as exc:
        form_error(exc)
        return redirect(_back())
    return redirect(url_for("web.cart"))


@bp.post("/cart/<product_id>/update")
@login_required
def cart_update(product_id):
    try:
        services().cart.update(g.user.id, positive_id(product_id, "product ID"),
                               {"quantity": request.form.get("quantity")})
        flash("Cart updated.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.cart"))


@bp.post("/cart/<product_id>/remove")
@login_required
def cart_remove(product_id):
    try:
        services().cart.remove(g.user.id, positive_id(product_id, "product ID"))
        flash("Removed from your cart.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.cart"))


@bp.post("/checkout")
@login_required
def checkout():
    f = request.form
    data = {"paymentMethod": f.get("payment_method")}
    if f.get("payment_method") in ("credit_card", "debit_card"):
        data["paymentDetails"] = {"cardNumber": f.get("card_number", "").replace(" ", ""),
                                  "expiryDate": f.get("expiry_date", ""), "cvv": f.get("cvv", ""),
                                  "cardholderName": f.get("cardholder_name", "")}
    try:
        order, payment = services().orders.checkout(g.user.id, data)
    except ShopError as exc:
        form_error(exc)
        return redirect(url_for("web.cart"))
    flash(f"Thank you! Order #{order.id} is placed (payment {payment.transaction_id}).")
    return redirect(url_for("web.order", order_id=order.id))


@bp.get("/orders")
@login_required
def orders():
    page = parse_int(request.args.get("page")) or 1
    result = services().orders.list(g.user.id, max(page, 1), 10)
    return render_template("orders.html", page=result)


@bp.get("/orders/<order_id>")
@login_required
def order(order_id):
    o = services().orders.get(positive_id(order_id, "order ID"), g.user.id)
    return render_template("order.html", order=o)


@bp.post("/orders/<order_id>/cancel")
@login_required
def order_cancel(order_id):
    oid = positive_id(order_id, "order ID")
    try:
        services().orders.cancel(oid, g.user.id)
        flash("Order cancelled; the items are back in stock.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.order", order_id=oid))


@bp.post("/account/seller")
@login_required
def become_seller():
    services().auth.upgrade_to_seller(g.user.id)
    flash("You are now a seller. Add your first product below.")
    return redirect(url_for("web.seller"))


@bp.get("/seller")
@seller_required
def seller():
    s = services()
    page_no = parse_int(request.args.get("page")) or 1
    page = s.products.by_seller(g.user.id, {"page": str(max(page_no, 1)), "limit": "20"})
    return render_template("seller.html", page=page, stats=s.products.stats(g.user.id))


def _product_form_data(form) -> dict:
    data = {k: form.get(k, "") for k in ("name", "description", "category_id", "price",
                                         "inventory_quantity", "image_url")}
    return {k: v for k, v in data.items() if v != "" or k in ("description", "image_url")}


@bp.route("/seller/products/new", methods=["GET", "POST"])
@seller_required
def product_new():
    s = services()
    if request.method == "POST":
        try:
            p = s.products.create(g.user.id, _product_form_data(request.form))
        except ShopError as exc:
            form_error(exc)
            return render_template("product_form.html", form=request.form, product=None,
                                   categories=s.categories.flat()), exc.status
        flash(f"Product “{p.name}” created.")
        return redirect(url_for("web.seller"))
    return render_template("product_form.html", form={}, product=None, categories=s.categories.flat())


@bp.route("/seller/products/<product_id>/edit", methods=["GET", "POST"])
@seller_required
def product_edit(product_id):
    s = services()
    pid = positive_id(product_id, "product ID")
    p = s.products.get(pid)
    if request.method == "POST":
        try:
            p = s.products.update(pid, g.user.id, _product_form_data(request.form))
        except ShopError as exc:
            form_error(exc)
            return render_template("product_form.html", form=request.form, product=p,
                                   categories=s.categories.flat()), exc.status
        flash(f"Product “{p.name}” saved.")
        return redirect(url_for("web.seller"))
    form = {"name": p.name, "description": p.description or "", "category_id": p.category_id,
            "price": p.price, "inventory_quantity": p.inventory_quantity, "image_url": p.image_url or ""}
    return render_template("product_form.html", form=form, product=p, categories=s.categories.flat())


@bp.post("/seller/products/<product_id>/delete")
@seller_required
def product_delete(product_id):
    try:
        services().products.delete(positive_id(product_id, "product ID"), g.user.id)
        flash("Product deleted.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.seller"))


@bp.post("/seller/products/<product_id>/inventory")
@seller_required
def product_inventory(product_id):
    try:
        services().products.set_inventory(positive_id(product_id, "product ID"), g.user.id,
                                          {"inventory_quantity": request.form.get("inventory_quantity")})
        flash("Inventory updated.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.seller"))


@bp.route("/categories/manage", methods=["GET", "POST"])
@seller_required
def categories():
    s = services()
    if request.method == "POST":
        try:
            c = s.categories.create({"name": request.form.get("name"),
                                     "parent_id": request.form.get("parent_id") or None})
            flash(f"Category “{c.name}” created.")
        except ShopError as exc:
            form_error(exc)
        return redirect(url_for("web.categories"))
    return render_template("categories.html", tree=s.categories.tree(), roots=s.categories.roots())


@bp.post("/categories/<category_id>/rename")
@seller_required
def category_rename(category_id):
    try:
        services().categories.update(positive_id(category_id, "category ID"), {"name": request.form.get("name")})
        flash("Category renamed.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.categories"))


@bp.post("/categories/<category_id>/delete")
@seller_required
def category_delete(category_id):
    try:
        services().categories.delete(positive_id(category_id, "category ID"))
        flash("Category deleted.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.categories"))
