"""/flags: see and change the routing flags of this browser; /flags/health.json for scripts."""
from __future__ import annotations

import ipaddress
import logging

from flask import Blueprint, Response, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from opentelemetry import trace

from observability.events import emit

from ..aspects import flags as flags_mod
from ..aspects.flags import NAMES, PRESETS, PRESETS_BY_KEY, FlagError, Flags
from ..operators.accounts import NAME_RE
from ..web.redirects import same_site_path
from . import last_trace

bp = Blueprint("flags", __name__, url_prefix="/flags")
log = logging.getLogger("shop.flags")
tracer = trace.get_tracer("shop.flags")


def _state():
    return current_app.extensions["shop"]


def require_operator():
    """The flag page is for operators: named accounts (SHOP_OPERATORS_FILE; the deprecated
    SHOP_FLAGS_PAGE_PASSWORD is the account `operator`) signing in with HTTP basic credentials.
    With none configured it is open only in development (SHOP_ENV=development) and locked
    everywhere else. Checked before anything else, CSRF included."""
    if request.blueprint != "flags" or request.endpoint == "flags.reset":
        return None  # anyone may drop their own trial cookie (the shop pages' notice offers it)
    return check_operator()


def check_operator():
    """None when this request may see operator pages (the flag page, /metrics), with the signed-in
    account in g.operator; else the refusal."""
    settings = _state().settings
    operators = current_app.extensions["operators"]
    if not operators.configured:
        if settings.development and _loopback():
            g.operator = "developer"
            return None
        if settings.development:
            return Response("With no operator account the flag page and /metrics answer only on this machine"
                            " (loopback): they change how the store routes its data. Open it from"
                            " http://127.0.0.1, or give operators accounts (SHOP_OPERATORS_FILE).\n", 403,
                            {"Content-Type": "text/plain; charset=utf-8"})
        return Response("The flag page is locked: it changes how the store routes its data. Give operators "
                        "accounts (SHOP_OPERATORS_FILE, `scripts/flask.sh operator add NAME`) to use it "
                        "(or run with SHOP_ENV=development on a developer's machine).\n", 403,
                        {"Content-Type": "text/plain; charset=utf-8"})
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return _challenge()  # a browser's first visit: not an attempt
    typed = (auth.username or "").strip().lower()
    name = typed if NAME_RE.fullmatch(typed) else "(not an account name)"
    address = request.remote_addr or "unknown"
    lockout = current_app.extensions["operator_lockout"]
    locked = lockout.locked(name, address)
    if locked:  # the right secret too: guessing on must not pay
        emit(log, logging.INFO, "operator sign-in refused: locked out",
             {"event": "operator", "account": name, "remote_addr": address, "locked": sorted(locked)})
        return _locked(locked)
    account = operators.verify(name, auth.password or "")
    if account is None:
        locked, now_locked = lockout.failed(name, address)
        emit(log, logging.INFO, "operator sign-in failed",
             {"event": "operator", "account": name, "remote_addr": address, "path": request.path,
              "locked": sorted(locked)})
        if now_locked:
            emit(log, logging.WARNING, "operator locked out",
                 {"event": "operator", "account": name, "remote_addr": address, "locked": now_locked,
                  "retry_after": max(locked.values()), "limit": str(lockout.limit), "path": request.path})
        return _locked(locked) if locked else _challenge()
    g.operator = account
    return None


def _challenge():
    return Response("Operator credentials required for the flag page.\n", 401,
                    {"WWW-Authenticate": 'Basic realm="shop flags", charset="UTF-8"'})


def _locked(locked: dict):
    """429 with no new challenge (a browser would only ask again): wait, then sign in."""
    wait = max(locked.values())
    return Response(f"Too many failed sign-ins ({' and '.join(sorted(locked))} locked): try again in {wait} "
                    "seconds.\n", 429, {"Retry-After": str(wait), "Content-Type": "text/plain; charset=utf-8"})


def _loopback() -> bool:
    """Whether the client is on this machine (behind TRUSTED_PROXIES: the forwarded address)."""
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


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
        "scenario": flags.scenario, "risks": flags.risks, "server_default": str(runtime.server_flags()),
        "pinned": runtime.pinned, "repairs_pending": pending, **_last_trace(),
        **runtime.stats.snapshot(),  # the whole server's figures, as /metrics has them
    }


def _last_trace() -> dict:
    """This browser's last traced request and the spans of it this worker kept (without Jaeger:
    observability.export.RecentSpans; another worker may have served it)."""
    import os

    import observability

    last = last_trace.recall()
    recent = observability.recent_spans()
    spans = recent.trace(last["trace_id"]) if last and recent else []
    return {"last_trace": last, "last_trace_spans": spans, "worker_pid": os.getpid(),
            "spans_kept": recent is not None}


def _control():
    from ..migration.control import PhaseControl
    return PhaseControl(_state())


def _render(status=200, confirm=None):
    data = health()
    jaeger = (_state().settings.jaeger_ui_url or "").rstrip("/")  # empty: no Jaeger to link to
    wanted = flags_mod.browser()
    server = _state().runtime.server_flags()
    try:
        phase = _control().status()
    except Exception as exc:  # noqa: BLE001 - the page must show with a store down
        phase = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    settings = _state().settings
    switching, waiting = _waiting(phase)
    runs = _runs_under_way()
    if any(r["recent"] for r in runs):
        waiting.append("a run is under way")
    refresh = 5 if waiting and request.args.get("refresh") != "off" else None
    return render_template("flags.html", h=data, flags=_effective(), names=NAMES, presets=PRESETS, confirm=confirm,
                           jaeger=jaeger, wanted=wanted, server=server, phase=phase, switching=switching,
                           waiting=waiting, refresh=refresh, runs=runs, raises=settings.dual_read_mode == "raise",
                           where={"database": settings.mysql_database, "prefix": settings.dynamodb_table_prefix}), status


def _runs_under_way() -> list[dict]:
    """Sync runs started and not finished; `recent`: progress within the last minute (else it
    was probably interrupted)."""
    from datetime import timedelta

    from ..migration.checkpoint import Checkpoints
    from ..migration.state import now
    try:
        runs = Checkpoints(_state().db).under_way()
    except Exception:  # noqa: BLE001 - no run tables yet, or MySQL down: nothing to show
        return []
    return [{**r, "recent": now() - r["last_progress"] < timedelta(minutes=1)} for r in runs]


def _waiting(phase: dict) -> tuple[str | None, list[str]]:
    """What the page is waiting for, if anything: the workers following a change (a transition
    in progress), MySQL catching up after phase 5, phase 3's comparisons. While it waits the page
    reloads itself (a meta refresh: the CSP allows no script)."""
    from datetime import timedelta

    from ..migration.state import now, parse, shown
    if phase.get("error"):
        return None, []
    waiting, switching = [], None
    changed = parse(phase.get("changed_at"))
    if changed and now() < changed + timedelta(seconds=2 * phase["refresh_s"]):
        switching = shown(changed + timedelta(seconds=2 * phase["refresh_s"]))
        waiting.append("the workers switch phase")
    if phase.get("mysql_behind_since"):
        waiting.append("MySQL catches up")
    for gate in (phase.get("next") or {}).get("gates", []):
        if gate["name"] == "enough comparisons of every entity read in phase 3" and not gate["ok"]:
            waiting.append(f"phase 3 gathers comparisons ({gate['detail']})")
    return switching, waiting


def _done(message: str | None = None, error: str | None = None, **query):
    """Post/redirect/get: every form lands back on the page, which a reload does not resubmit."""
    if message:
        flash(message)
    if error:
        flash(error, "error")
    return redirect(url_for("flags.page", **query), code=303)


@bp.get("")
def page():
    """The server's phase, this browser's flags, and the migration's health."""
    confirm = None
    if request.args.get("confirm"):
        try:
            confirm = {"flags": Flags.parse(request.args["confirm"])}
        except FlagError:
            confirm = None
    return _render(confirm=confirm)


@bp.get("/health.json")
def health_json():
    return jsonify({**health(), "phase": _phase_summary()})


def _phase_summary() -> dict:
    try:
        state = _state().runtime.phase.current()
        return {"phase": state.phase, "label": state.label, "flags": str(state.flags), "source": state.source}
    except Exception as exc:  # noqa: BLE001
        return {"error": type(exc).__name__}


@bp.get("/flag")
@bp.get("/preset/<key>")
@bp.get("/reset")
@bp.get("/phase")
@bp.get("/exposure")
def back_to_page(key=None):
    """The forms' addresses, opened directly (a bookmark, a reload after a redirect)."""
    return redirect(url_for("flags.page"), code=303)


def _apply(new: Flags, how: str):
    state = _state()
    if state.runtime.pinned:
        return _done(error="The server pins the flags (SHOP_FLAGS_PINNED): they cannot be changed here.")
    old = _effective()
    effective = flags_mod.combine(state.runtime.server_flags(), new)
    if effective.risks and request.form.get("confirm_risk") != "yes":
        return _done(error="This mix is risky: " + "; ".join(effective.risks) + ". Nothing changed.",
                     confirm=str(new))
    who = g.get("operator") or (g.user.username if g.get("user") else "anonymous")
    with tracer.start_as_current_span("flags.change") as span:
        span.set_attributes({"shop.flags.from": str(old), "shop.flags.to": str(effective), "shop.flags.who": who,
                             "shop.flags.how": how, "shop.flags.requested": str(new)})
        emit(log, logging.INFO, "flags changed", {"event": "flags", "who": who, "remote_addr": request.remote_addr,
                                                  "from": str(old), "to": str(effective), "requested": str(new),
                                                  "how": how}, span)
    note = ""
    if (new.write_mysql, new.write_ddb) != (effective.write_mysql, effective.write_ddb):
        note = (f" Writes follow the server's phase ({_writes(effective)}), whatever the cookie asks: "
                "only its reads apply to this browser.")
    response = _done(f"Flags set: {new} ({new.scenario}).{note}")
    current_app.extensions["flag_cookie"].set(response, new, secure=request.is_secure)
    return response


def _writes(flags: Flags) -> str:
    return " and ".join(n for n, on in (("MySQL", flags.write_mysql), ("DynamoDB", flags.write_ddb)) if on)


def _refuse(exc: FlagError):
    return _done(error=f"Refused: {exc}. Nothing changed.")


@bp.post("/flag")
def set_one():
    """One flag: a field named after the flag, value on or off."""
    chosen = [n for n in NAMES if n in request.form]
    if len(chosen) != 1 or request.form[chosen[0]] not in ("on", "off"):
        return _done(error="Send exactly one flag, on or off. Nothing changed.")
    name = chosen[0]
    names = set((flags_mod.browser() or _state().runtime.server_flags()).names)
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
        return _done(error=f"No preset {key!r}. Nothing changed.")
    return _apply(preset.flags, f"preset {preset.number}")


@bp.post("/reset")
def reset():
    state = _state()
    if state.runtime.pinned:
        return _done(error="The server pins the flags (SHOP_FLAGS_PINNED): they cannot be changed here.")
    back = same_site_path(request.form.get("next"))  # from a shop page's notice: back to that page
    if back:
        flash("Back to the server's phase: this browser's trial flags are forgotten.")
        response = redirect(back, code=303)
    else:
        response = _done("Back to the server's phase.")
    current_app.extensions["flag_cookie"].clear(response, secure=request.is_secure)
    emit(log, logging.INFO, "flags reset", {"event": "flags", "to": str(state.runtime.server_flags()),
                                            "remote_addr": request.remote_addr})
    return response


@bp.post("/phase")
def set_phase():
    """The server-wide phase, for every visitor: the same gates and steps as `flask phase set`."""
    try:
        target = int(request.form.get("phase", ""))
    except ValueError:
        return _done(error="Choose a phase from 1 to 5. Nothing changed.")
    reason = (request.form.get("reason") or "").strip()[:500]
    force = request.form.get("force") == "yes"
    if force and not reason:
        return _done(error="Forcing past a gate needs a reason (it is kept in the audit trail). Nothing changed.")
    result = _control().set(target, f"{g.get('operator', 'operator')} (flag page)", force=force, reason=reason)
    if not result.ok:
        return _done(error=f"Refused: {result.message}. Nothing changed.")
    return _done(f"Server phase: {result.message}.")


@bp.post("/exposure")
def set_exposure():
    """How far an entity's reads are exposed: the same rules as `flask phase compare` and `rollout`."""
    from ..migration.entities import parse_names

    names = parse_names([request.form.get("entity", "")])
    try:
        compare_percent = _percent(request.form.get("compare_percent"))
        rollout = _percent(request.form.get("rollout_percent"))
    except ValueError as exc:
        return _done(error=f"{exc}. Nothing changed.")
    mode = request.form.get("compare_mode") or None
    reason = (request.form.get("reason") or "").strip()[:500]
    force = request.form.get("force") == "yes"
    if force and not reason:
        return _done(error="Forcing past a gate needs a reason (it is kept in the audit trail). Nothing changed.")
    result = _control().expose(names, f"{g.get('operator', 'operator')} (flag page)", compare_percent=compare_percent,
                               compare_mode=mode, rollout=rollout, force=force, reason=reason)
    if not result.ok:
        return _done(error=f"Refused: {result.message}. Nothing changed.")
    return _done(f"Reads exposed: {result.message}.")


def _percent(text: str | None) -> float | None:
    """A percentage typed in a form ('' or absent: unchanged); ValueError with what is wrong."""
    text = (text or "").strip().rstrip("%").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text[:20]!r} is not a percentage") from None
    if not 0 <= value <= 100:
        raise ValueError(f"{value:g} is not between 0 and 100")
    return value
