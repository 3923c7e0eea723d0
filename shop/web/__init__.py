"""HTML pages for people: browse, buy, and sell."""
from __future__ import annotations

import hmac
import logging
import secrets

from flask import abort, render_template, request, session

from ..errors import ShopError, StoreBusyError, StoreUnavailableError
from ..throttle import retry_after
from .views import bp

log = logging.getLogger("shop.web")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """Every form POST outside /api carries the session's token."""
    if request.method != "POST" or request.path.startswith("/api/"):
        return
    sent = request.form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="The form expired or did not come from this site. Reload the page and try again.")


def register(app) -> None:
    app.register_blueprint(bp)
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token


def handle_shop_error(exc: ShopError):
    if isinstance(exc, StoreBusyError):
        log.warning("store busy", extra={"store": exc.store, "path": request.path})
        return render_template("error.html", status=503, message="The store was too busy to save that;"
                               " nothing was changed. Please try again."), 503, {"Retry-After": "1"}
    if isinstance(exc, StoreUnavailableError):
        log.error("store unavailable", extra={"store": exc.store, "path": request.path})
        return render_template("error.html", status=503,
                               message="The store's database is unavailable. Please try again in a moment."), 503
    return render_template("error.html", status=exc.status, message=exc.message), exc.status


def handle_http_error(exc):
    messages = {404: "That page does not exist.", 413: "What you sent is too large.",
                405: "That action is not allowed here.",
                429: "Too many attempts from your address. Please wait a few minutes and try again."}
    message = messages.get(exc.code, exc.description)
    headers = {"Retry-After": retry_after(exc)} if exc.code == 429 else {}
    return render_template("error.html", status=exc.code, message=message), exc.code, headers


def handle_unexpected(exc: Exception):
    log.exception("unhandled error", extra={"path": request.path})
    return render_template("error.html", status=500, message="Something went wrong on our side."), 500
