"""/flags: see and change the routing flags of this browser; /flags/health.json for scripts."""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request
from opentelemetry import trace

from observability.events import emit

from ..aspects.flags import NAMES, PRESETS, PRESETS_BY_KEY, FlagError, Flags
from . import last_trace

bp = Blueprint("flags", __name__, url_prefix="/flags")
log = logging.getLogger("shop.flags")
tracer = trace.get_tracer("shop.flags")


def _state():
    return current_app.extensions["shop"]


def require_operator():
    """With SHOP_FLAGS_PAGE_PASSWORD set, the page asks for HTTP basic credentials
    (checked before anything else, CSRF included)."""
    if request.blueprint != "flags":
        return None
    return check_operator()


def check_operator():
    """None when this request may see operator pages (the flag page, /metrics); else the 401."""
    password = _state().settings.flags_page_password
    if not password:
        return None
    auth = request.authorization
    if auth is None or not hmac.compare_digest((auth.password or "").encode(), password.encode()):
        return Response("Operator credentials required for the flag page.\n", 401,
                        {"WWW-Authenticate": 'Basic realm="shop flags", charset="UTF-8"'})
    g.operator = auth.username or "operator"
    return None


def _effective() -> Flags:
    return _state().runtime.flags()


def health() -> dict:
    state = _state()
    runtime = state.runtime
    flags = _effective()
    try:
        pending = runtime.repair_log.pending_count()
    except Exception as exc:  # the page must show even with MySQL down
        pending = f"unknown ({type(exc).__name__})"
    return {
        "flags": {n: n in flags.names for n in NAMES}, "source": g.get("flags_source", "server default"),
        "scenario": flags.scenario, "risks": flags.risks, "server_default": str(runtime.default_flags),
        "pinned": runtime.pinned, "repairs_pending": pending, "last_trace": last_trace.recall(),
        **runtime.stats.snapshot(),  # the whole server's figures, as /metrics has them
    }


def _render(status=200, message=None, error=None, confirm=None):
    data = health()
    jaeger = _state().settings.jaeger_ui_url.rstrip("/")
    return render_template("flags.html", h=data, flags=_effective(), names=NAMES, presets=PRESETS,
                           message=message, error=error, confirm=confirm, jaeger=jaeger), status


@bp.get("")
def page():
    """The effective flags, where they come from, and the migration's health."""
    return _render()


@bp.get("/health.json")
def health_json():
    return jsonify(health())


def _apply(new: Flags, how: str):
    state = _state()
    if state.runtime.pinned:
        return _render(409, error="The server pins the flags (SHOP_FLAGS_PINNED): they cannot be changed here.")
    old = _effective()
    if new.risks and request.form.get("confirm_risk") != "yes":
        return _render(409, error="This mix is risky: " + "; ".join(new.risks) + ". Nothing changed.",
                       confirm={"flags": new, "how": how})
    who = g.get("operator") or (g.user.username if g.get("user") else "anonymous")
    with tracer.start_as_current_span("flags.change") as span:
        span.set_attributes({"shop.flags.from": str(old), "shop.flags.to": str(new), "shop.flags.who": who,
                             "shop.flags.how": how})
        emit(log, logging.INFO, "flags changed", {"event": "flags", "who": who, "remote_addr": request.remote_addr,
                                                  "from": str(old), "to": str(new), "how": how}, span)
    response = current_app.make_response(_render_for(new, f"Flags set: {new} ({new.scenario}).", "cookie"))
    current_app.extensions["flag_cookie"].set(response, new, secure=request.is_secure)
    return response


def _render_for(flags: Flags, message: str, source: str):
    from ..aspects import flags as flags_mod
    token = flags_mod.set_current(flags)  # show the page as the next request will see it
    g.flags_source = source
    try:
        return _render(message=message)
    finally:
        flags_mod.reset(token)


def _refuse(exc: FlagError):
    return _render(400, error=f"Refused: {exc}. Nothing changed.")


@bp.post("/flag")
def set_one():
    """One flag: a field named after the flag, value on or off."""
    chosen = [n for n in NAMES if n in request.form]
    if len(chosen) != 1 or request.form[chosen[0]] not in ("on", "off"):
        return _render(400, error="Send exactly one flag, on or off. Nothing changed.")
    name = chosen[0]
    names = set(_effective().names)
    names.add(name) if request.form[name] == "on" else names.discard(name)
    try:
        return _apply(Flags.from_names(names), f"{name}={request.form[name]}")
    except FlagError as exc:
        return _refuse(exc)


@bp.post("")
def set_all():
    """All four at once: a checked box is on, an absent one off."""
    try:
        new = Flags.from_names([n for n in NAMES if request.form.get(n) == "on"])
    except FlagError as exc:
        return _refuse(exc)
    return _apply(new, "all four")


@bp.post("/preset/<key>")
def set_preset(key):
    preset = PRESETS_BY_KEY.get(key)
    if preset is None:
        return _render(404, error=f"No preset {key!r}. Nothing changed.")
    return _apply(preset.flags, f"preset {preset.number}")


@bp.post("/reset")
def reset():
    state = _state()
    if state.runtime.pinned:
        return _render(409, error="The server pins the flags (SHOP_FLAGS_PINNED): they cannot be changed here.")
    response = current_app.make_response(_render_for(state.runtime.default_flags,
                                                     "Back to the server default.", "server default"))
    current_app.extensions["flag_cookie"].clear(response, secure=request.is_secure)
    emit(log, logging.INFO, "flags reset", {"event": "flags", "to": str(state.runtime.default_flags),
                                            "remote_addr": request.remote_addr})
    return response
