"""The JSON API under /api: the reference backend's 48 endpoints and /api/health."""
from __future__ import annotations

import logging

from flask import request
from werkzeug.exceptions import HTTPException

from ..errors import ShopError, StoreBusyError, StoreUnavailableError
from ..throttle import retry_after
from .accounts import auth_bp, seller_bp
from .catalog import categories_bp, products_bp
from .common import fail
from .health import health
from .shopping import cart_bp, orders_bp

log = logging.getLogger("shop.api")
BLUEPRINTS = (auth_bp, seller_bp, products_bp, categories_bp, cart_bp, orders_bp)


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def handle_shop_error(exc: ShopError):
    if isinstance(exc, StoreBusyError):
        log.warning("store busy", extra={"store": exc.store, "path": request.path})
        response, status = fail(503, "DatabaseError", "The database was too busy to save this; nothing was"
                                " changed. Please try again.")
        response.headers["Retry-After"] = "1"
        return response, status
    if isinstance(exc, StoreUnavailableError):
        log.error("store unavailable", extra={"store": exc.store, "path": request.path,
                                              "cause": type(exc.cause).__name__ if exc.cause else None})
        return fail(503, "DatabaseError", "Database connection failed. Please try again later.")
    return fail(exc.status, exc.type, exc.message, exc.details)


def handle_http_error(exc: HTTPException):
    messages = {404: f"Route {request.path} not found", 405: "Method not allowed",
                413: "Request body is too large", 429: "Too many requests. Please try again later."}
    types = {404: "NotFoundError", 405: "MethodNotAllowed", 413: "PayloadTooLarge", 429: "RATE_LIMIT_ERROR"}
    response, status = fail(exc.code or 500, types.get(exc.code, "HttpError"), messages.get(exc.code, exc.description))
    if status == 429:
        response.headers["Retry-After"] = retry_after(exc)
    return response, status


def handle_unexpected(exc: Exception):
    log.exception("unhandled error", extra={"path": request.path, "method": request.method})
    return fail(500, "INTERNAL_SERVER_ERROR", "Something went wrong")


def register(app) -> None:
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)

    app.add_url_rule("/api/health", "health", health)
