"""Who is reading: the stable key a read canary places a request by (shop.aspects.exposure).

A signed-in shopper is their user id (the API's token, or the storefront's session), so
their place in a canary is the same on every device. An anonymous browser gets a random visitor
cookie the first time a canary needs it; an anonymous API client without cookies is its address
(a cross-origin frontend does not send cookies to the API unless asked to).

The visitor cookie is not signed: a visitor who edits it only picks which store serves their own
reads, both of which hold the same data.
"""
from __future__ import annotations

import re
import secrets

from flask import Flask, current_app, g, request, session

from .api.common import bearer_token
from .aspects import exposure

VISITOR_COOKIE = "shop_visitor"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_YEAR_S = 365 * 24 * 3600


def key() -> str | None:
    """This request's reader, asked only when a canary between 0 and 100 % needs it."""
    api = request.path.startswith("/api/")
    user_id = g.get("user_id") if api else session.get("user_id")  # the API never reads the session (Vary: Cookie)
    if api and user_id is None and bearer_token():  # a public endpoint called with a token: its user
        try:
            user_id = current_app.extensions["shop"].services.auth.verify_token(bearer_token())
        except Exception:  # noqa: BLE001 - a bad token: the request fails later, clearly; anonymous here
            pass
    if isinstance(user_id, int):
        return f"user:{user_id}"
    visitor = request.cookies.get(VISITOR_COOKIE, "")
    if _TOKEN.fullmatch(visitor):
        return f"visitor:{visitor}"
    if api:
        return f"address:{request.remote_addr}" if request.remote_addr else None
    g.new_visitor = secrets.token_urlsafe(16)
    return f"visitor:{g.new_visitor}"


def init_app(app: Flask) -> None:
    def begin():
        g.reader = exposure.begin(key)

    def remember(response):
        visitor = g.pop("new_visitor", None)
        if visitor is not None:
            response.set_cookie(VISITOR_COOKIE, visitor, max_age=_YEAR_S, httponly=True, samesite="Lax",
                                secure=request.is_secure, path="/")
        return response

    def end(exc):
        token = g.pop("reader", None)
        if token is not None:
            exposure.end(token)
    app.before_request_funcs.setdefault(None, []).insert(0, begin)
    app.after_request(remember)
    app.teardown_request(end)
