"""Envelopes, request parsing and the authentication decorators of the JSON API."""
from __future__ import annotations

import functools

from flask import current_app, g, jsonify, request

from ..errors import AuthenticationError, ValidationError
from . import serialize


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


def body() -> dict:
    """The JSON object sent; a clear 400 for anything else."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True, force=True)
    if data is None:
        raise ValidationError("Request body must be valid JSON")
    if not isinstance(data, dict):
        raise ValidationError("Request body must be a JSON object")
    return data


def services():
    return current_app.extensions["shop"].services


def auth_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        if not header:
            raise AuthenticationError("Authorization header is required")
        token = header[7:] if header.startswith("Bearer ") else header
        if not token.strip():
            raise AuthenticationError("Token is required")
        g.user_id = services().auth.verify_token(token.strip())
        return view(*args, **kwargs)
    return wrapper


def seller_required(view):
    @auth_required
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        g.seller = services().auth.require_seller(g.user_id)
        return view(*args, **kwargs)
    return wrapper
