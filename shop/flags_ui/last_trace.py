"""This browser's last traced request, kept in a signed cookie of its own.

Kept with the browser so that two people on one server never see each other's trace, and
in its own cookie so that writing it on every response never overwrites a session that a
concurrent request changed (a login, say).
"""
from __future__ import annotations

import re

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from opentelemetry import trace

from .cookie import NAME as FLAGS_COOKIE

NAME = "shop_last_trace"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
# Requests whose trace is not worth a link: the flag page itself (its own reload would replace
# the request being looked at), Prometheus scrapes, and what browsers fetch on their own.
_SKIPPED_BLUEPRINTS = ("flags", "metrics")
_SKIPPED_PATHS = ("/static/", "/favicon.ico")


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="shop-last-trace")


def _from_a_browser_page(response) -> bool:
    """Only a browser's pages need the cookie: an HTML page, or a request carrying the session or
    the flag cookie (a browser that has been on the pages). A token client's JSON (a public
    product listing) gets no Set-Cookie, so shared caches may keep it."""
    return response.mimetype == "text/html" or any(
        name in request.cookies for name in (current_app.config["SESSION_COOKIE_NAME"], FLAGS_COOKIE))


def remember(response):
    """after_request: keep this request's trace, if it produced a sampled one."""
    ctx = trace.get_current_span().get_span_context()
    if not (ctx.is_valid and ctx.trace_flags.sampled) or request.blueprint in _SKIPPED_BLUEPRINTS \
            or request.path.startswith(_SKIPPED_PATHS) or not _from_a_browser_page(response):
        return response
    value = _serializer().dumps({"trace_id": format(ctx.trace_id, "032x"), "method": request.method,
                                 "path": request.path[:200], "status": response.status_code})
    response.set_cookie(NAME, value, httponly=True, samesite="Lax", secure=request.is_secure, path="/")
    return response


def recall() -> dict | None:
    """This browser's last traced request, or None (no cookie, or one we did not sign)."""
    raw = request.cookies.get(NAME)
    if not raw or len(raw) > 1024:
        return None
    try:
        data = _serializer().loads(raw)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not _TRACE_ID.fullmatch(str(data.get("trace_id", ""))):
        return None
    return data
