"""Storefront views; forms post back here and errors are shown next to them."""
from __future__ import annotations

import functools
import json

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for

from ..aspects import use_flags
from ..errors import AuthenticationError, AuthorizationError, ShopError, ValidationError
from ..services.orders import card_hints
from ..services.validation import parse_int, positive_id
from .redirects import referrer_path, same_site_path

bp = Blueprint("web", __name__)


def services():
    return current_app.extensions["shop"].services


@bp.before_app_request
def load_user():
    g.user = None
    if request.path.startswith(("/api/", "/static/")):
        return  # never touch the session there: reading it makes the response vary by Cookie
    user_id = session.get("user_id")
    if user_id is not None:
        # Who is logged in is read by the server's phase, never by a browser's trial flags: a
        # trial of DynamoDB reads (phase 1, say, where DynamoDB lacks this user) must not log
        # the shopper out. The page's other reads follow the trial (base.html says so).
        runtime = current_app.extensions["shop"].runtime
        try:
            with use_flags(runtime.server_flags()):
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


# Form values kept across the redirect after a failed post live in the (cookie) session:
# a bounded amount, never a password, so the cookie stays far below browsers' 4 KB.
_KEEP_BUDGET = 1200


def _again(endpoint: str, exc: ShopError, form, keep=(), **values):
    """Post/redirect/get for a refused form: flash what is wrong, keep what was typed, and
    send the browser back to the form (a reload then shows it again instead of re-posting)."""
    form_error(exc)
    kept, budget = {}, _KEEP_BUDGET
    for name in keep:
        value = form.get(name, "")
        size = len(json.dumps(value))  # as the cookie encodes it: "é" takes 6 bytes, "😀" 12
        if size > budget:
            flash(f"Please enter the {name.replace('_', ' ')} again: it was too long to keep.", "error")
            continue
        kept[name], budget = value, budget - size
    session["form"] = kept
    return redirect(url_for(endpoint, **values), code=303)


def _kept(default=None) -> dict:
    return session.pop("form", None) or (default or {})


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
            return _again("web.register", exc, request.form, ("username", "email", "first_name", "last_name"))
        session.clear()
        session["user_id"] = user.id
        flash(f"Welcome, {user.username}! Your account is ready.")
        return redirect(url_for("web.index"))
    return render_template("register.html", form=_kept())


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        try:
            user, _ = services().auth.login(request.form.to_dict())
        except (ValidationError, AuthenticationError) as exc:
            target = same_site_path(request.args.get("next"))
            return _again("web.login", exc, request.form, ("username",), **({"next": target} if target else {}))
        session.clear()
        session["user_id"] = user.id
        flash(f"Logged in as {user.username}.")
        return redirect(same_site_path(request.args.get("next")) or url_for("web.index"))
    return render_template("login.html", form=_kept())


@bp.post("/logout")
def logout():
    session.clear()
    flash("Logged out.")
    return redirect(url_for("web.index"))


@bp.get("/cart")
@login_required
def cart():
    return render_template("cart.html", cart=services().cart.get(g.user.id), test_cards=card_hints())


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


@bp.route("/orders/<order_id>/cancel", methods=["GET", "POST"])
@login_required
def order_cancel(order_id):
    oid = positive_id(order_id, "order ID")
    if request.method == "GET":
        services().orders.get(oid, g.user.id)  # someone else's order is refused here already
        return _confirm(f"Cancel order #{oid}?", "Its items go back in stock; this cannot be undone.",
                        "Cancel order", url_for("web.order", order_id=oid))
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


PRODUCT_FIELDS = ("name", "description", "category_id", "price", "inventory_quantity", "image_url")


def _product_form_data(form) -> dict:
    # Every field as sent, empty ones included: clearing the name is an error to show,
    # not a field left out of the update.
    return {k: form.get(k, "") for k in PRODUCT_FIELDS}


def _own_product(product_id):
    """The signed-in seller's product, refused as the page opens when it is someone else's."""
    p = services().products.get(positive_id(product_id, "product ID"))
    if p.seller_id != g.user.id:
        raise AuthorizationError("You can only change your own products.")
    return p


@bp.route("/seller/products/new", methods=["GET", "POST"])
@seller_required
def product_new():
    s = services()
    if request.method == "POST":
        try:
            p = s.products.create(g.user.id, _product_form_data(request.form))
        except ShopError as exc:
            return _again("web.product_new", exc, request.form, PRODUCT_FIELDS)
        flash(f"Product “{p.name}” created.")
        return redirect(url_for("web.seller"))
    return render_template("product_form.html", form=_kept(), product=None, categories=s.categories.flat())


@bp.route("/seller/products/<product_id>/edit", methods=["GET", "POST"])
@seller_required
def product_edit(product_id):
    s = services()
    p = _own_product(product_id)
    if request.method == "POST":
        try:
            p = s.products.update(p.id, g.user.id, _product_form_data(request.form))
        except ShopError as exc:
            return _again("web.product_edit", exc, request.form, PRODUCT_FIELDS, product_id=p.id)
        flash(f"Product “{p.name}” saved.")
        return redirect(url_for("web.seller"))
    form = {"name": p.name, "description": p.description or "", "category_id": p.category_id,
            "price": p.price, "inventory_quantity": p.inventory_quantity, "image_url": p.image_url or ""}
    return render_template("product_form.html", form=_kept(form), product=p, categories=s.categories.flat())


@bp.route("/seller/products/<product_id>/delete", methods=["GET", "POST"])
@seller_required
def product_delete(product_id):
    p = _own_product(product_id)
    if request.method == "GET":
        return _confirm(f"Delete the product “{p.name}”?", "It disappears from the shop and from carts.",
                        "Delete product", url_for("web.seller"))
    try:
        services().products.delete(p.id, g.user.id)
        flash(f"Product “{p.name}” deleted.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.seller"))


def _confirm(question: str, consequence: str, button: str, cancel_url: str):
    """A page that asks before a destructive action; its form posts to the same address."""
    return render_template("confirm.html", question=question, consequence=consequence, button=button,
                           cancel_url=cancel_url)


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
                                     "parent_id": request.form.get("parent_id") or None}, g.user.id)
            flash(f"Category “{c.name}” created.")
        except ShopError as exc:
            form_error(exc)
        return redirect(url_for("web.categories"))
    return render_template("categories.html", tree=s.categories.tree(), roots=s.categories.roots())


@bp.post("/categories/<category_id>/rename")
@seller_required
def category_rename(category_id):
    try:
        services().categories.update(positive_id(category_id, "category ID"), {"name": request.form.get("name", "")},
                                     g.user.id)
        flash("Category renamed.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.categories"))


@bp.route("/categories/<category_id>/delete", methods=["GET", "POST"])
@seller_required
def category_delete(category_id):
    c = services().categories.get(positive_id(category_id, "category ID"))
    if request.method == "GET":
        return _confirm(f"Delete the category “{c.name}”?",
                        "Only a category without products or subcategories can be deleted.",
                        "Delete category", url_for("web.categories"))
    try:
        services().categories.delete(c.id, g.user.id)
        flash(f"Category “{c.name}” deleted.")
    except ShopError as exc:
        form_error(exc)
    return redirect(url_for("web.categories"))
