"""The flag page: the server-wide phase for operators, and per-browser read flags in a signed cookie."""
from __future__ import annotations

import logging

from flask import current_app, g, request
from markupsafe import Markup, escape

from ..aspects import flags as flags_mod
from ..operators.accounts import Operators
from . import last_trace, metrics
from .cookie import NAME, FlagCookie
from .views import bp, require_operator

log = logging.getLogger("shop.flags")


def register(app) -> None:
    settings = app.extensions["shop"].settings
    # itsdangerous signs with the last key of the list and verifies with all: old keys keep working.
    app.extensions["flag_cookie"] = FlagCookie(list(reversed(settings.secret_keys)), settings.flags_cookie_max_age)
    app.extensions["operators"] = Operators(settings.operators_file, settings.flags_page_password,
                                            settings.bcrypt_rounds)
    app.register_blueprint(bp)
    app.register_blueprint(metrics.bp)
    app.before_request_funcs.setdefault(None, []).insert(0, require_operator)
    app.config.setdefault("EXTRA_MENU", []).append(("Feature flags", "flags.page"))
    app.jinja_env.filters["breakable"] = _breakable
    app.jinja_env.filters["utc"] = _utc
    # Right after the operator check, before anything that reads data: every read of the request
    # follows the browser's flags, but for the logged-in user, whom web.load_user reads by the
    # server's phase (a trial of DynamoDB reads must not log the shopper out).
    app.before_request_funcs[None].insert(1, _flags_from_cookie)
    app.after_request(_remember_trace)
    app.teardown_request(_reset)
    app.context_processor(_trial)


def _trial() -> dict:
    """For base.html's notice: this browser's trial flags while its cookie is in force."""
    if g.get("flags_source") != "cookie":
        return {"trial": None}
    runtime = current_app.extensions["shop"].runtime
    return {"trial": {"flags": runtime.flags(), "server": runtime.server_flags()}}


def _flags_from_cookie():
    """Every request reads by its cookie's flags (writes always follow the server's phase)."""
    runtime = current_app.extensions["shop"].runtime
    raw = request.cookies.get(NAME)
    g.flags_source = "server phase"
    if raw is None:
        return
    flags, problem = current_app.extensions["flag_cookie"].loads(raw)
    if problem:
        log.warning("flag cookie ignored", extra={"event": "flags", "reason": problem, "path": request.path,
                                                  "remote_addr": request.remote_addr})
        g.flags_cookie_problem = problem
        return
    if runtime.pinned:
        g.flags_source = "pinned by the server (cookie ignored)"
        return
    g.flags_token = flags_mod.set_browser(flags)
    g.flags_source = "cookie"


def _remember_trace(response):
    return last_trace.remember(response)  # this browser's, in its own cookie


def _reset(exc):
    token = g.pop("flags_token", None)
    if token is not None:
        flags_mod.reset_browser(token)


def _breakable(value) -> Markup:
    """Long identifiers (flag lists, Repository.method names) may wrap on a phone: a line-break
    opportunity after each comma and dot, invisible to text and to copy-paste."""
    return Markup(str(escape(str(value))).replace(",", ",<wbr>").replace(".", ".<wbr>"))


def _utc(value) -> str:
    """A stored time (ISO text in UTC, naive, or a Unix timestamp) with its zone: every time the
    page shows says which zone it is in."""
    from datetime import datetime, timezone

    from ..migration.state import parse, shown
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):
        return shown(datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None))
    try:
        when = parse(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return shown(when)
