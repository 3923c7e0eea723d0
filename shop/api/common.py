"""Envelopes, request parsing and the authentication decorators of the JSON API."""
from __future__ import annotations

import functools
import re

from flask import current_app, g, jsonify, request

from ..errors import AuthenticationError, ValidationError
from . import serialize

_SURROGATE = re.compile("[\ud800-\udfff]")


def ok(data=None, status: int = 200, message: str | None = None):
    body = {"success": True}
    if data is not None:
        body["data"] = data
    if message is not None:
        body["message"] = message
    body["timestamp"] = serialize.now()
    return jsonify(body), status


def fail(status: int, type_: str, message: str, details=None):
    error = {"type": type_, "message": message}
    if details:
        error["details"] = details
    return jsonify({"success": False, "error": error, "timestamp": serialize.now()}), status


MAX_DEPTH = 32  # the deepest real body (checkout's paymentDetails) is 2 levels


def body() -> dict:
    """The JSON object sent; a clear 400 for anything else."""
    if not request.get_data(cache=True):
        return {}
    try:
        data = request.get_json(silent=True, force=True)
    except RecursionError:  # the C parser gives up on nesting about 1000 deep
        raise ValidationError(f"Request body is nested more than {MAX_DEPTH} levels deep") from None
    if data is None:
        raise ValidationError("Request body must be valid JSON")
    if not isinstance(data, dict):
        raise ValidationError("Request body must be a JSON object")
    _check_tree(data)
    return data


def _check_tree(data) -> None:
    """Refuse bodies no client sends: deep nesting, and strings with lone surrogates
    ("\\ud800" is valid JSON but no valid text: no database or encoder accepts it)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValidationError(f"Request body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise ValidationError("Request body contains text that is not valid Unicode (a lone surrogate)")


def services():
    return current_app.extensions["shop"].services


def bearer_token() -> str:
    """The request's token: `Authorization: Bearer <token>`, or the bare token (as the reference
    API takes it); empty without one."""
    header = request.headers.get("Authorization", "")
    return (header[7:] if header.startswith("Bearer ") else header).strip()


def auth_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not request.headers.get("Authorization", ""):
            raise AuthenticationError("Authorization header is required")
        token = bearer_token()
        if not token:
            raise AuthenticationError("Token is required")
        g.user_id = services().auth.verify_token(token)
        return view(*args, **kwargs)
    return wrapper


def seller_required(view):
    @auth_required
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.seller = services().auth.require_seller(g.user_id)
        return view(*args, **kwargs)
    return wrapper
