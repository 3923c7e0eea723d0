"""shop: the online shopping store, mid-migration from MySQL to DynamoDB."""
from __future__ import annotations

import os
from dataclasses import dataclass

from flask import Flask

from . import aspects
from .config import DEVELOPMENT_SECRET_KEY, Settings
from .db import Database
from .repositories import Repositories

# Weave the routing aspects into the MySQL repositories when they are imported.
# SHOP_ASPECTS=off leaves the original layer alone (a baseline for benchmarks).
if os.environ.get("SHOP_ASPECTS", "on").lower() != "off":
    aspects.install()


@dataclass
class ShopState:
    settings: Settings
    db: Database
    repos: Repositories
    services: object
    dynamo: object = None
    runtime: object = None
    guard: object = None   # shop.migration.guard.Guard (None: SHOP_GUARD=off or pinned flags)
    watch: object = None   # the worker's thread that keeps evidence and lets the guard look

    def close(self) -> None:
        """Stop the application's threads and pools (tests and tools that build applications):
        the watch first, so no evidence of its is flushed into stores others use afterwards."""
        if self.watch is not None:
            self.watch.close()
        if self.runtime is not None:
            self.runtime.close()


def create_app(settings: Settings | None = None, **overrides) -> Flask:
    """Build the application; no connection is opened until a request needs one."""
    from . import api, cli, flags_ui, readers, security, web
    from .services import Services
    from observability import init_app as init_observability

    settings = settings or Settings.from_env(**overrides)
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
                      MAX_CONTENT_LENGTH=settings.max_content_length,
                      TESTING=settings.testing, JSON_SORT_KEYS=False)
    if settings.shop_env == "development" and settings.secret_key == DEVELOPMENT_SECRET_KEY:
        app.logger.warning("SHOP_ENV=development with the published SECRET_KEY: tokens and cookies can be forged")
    app.json.sort_keys = False
    db = Database(settings)
    repos = Repositories.mysql(db)
    from .aspects.repair_log import RepairLog
    from .migration import entities
    from .migration.catchup import CatchUp
    from .migration.evidence import EvidenceLog
    from .migration.guard import Guard, Watch
    from .migration.journal import Journal
    from .migration.state import PhaseStore, PhaseView, keep_mysql_behind
    from .repositories.dynamodb import Dynamo

    dynamo = Dynamo(settings)
    default = aspects.Flags.parse(settings.shop_flags)
    repair_log = RepairLog(db)
    journal = Journal(repair_log, dynamo)
    view = PhaseView(PhaseStore(db, dynamo), default, settings.phase_refresh_s)
    evidence = EvidenceLog(db, settings.evidence_retention_h, version_of=lambda: view.current().version)
    runtime = aspects.Runtime(settings, journal, default, entities.for_repository, phase=view,
                              catch_up=CatchUp(db, dynamo, journal, still_behind=lambda: keep_mysql_behind(view)),
                              evidence=evidence)
    view.on_read = _on_phase_read(runtime, entities.NAMES)  # the phase and exposure gauges of /metrics
    aspects.attach(repos, Repositories.dynamodb(dynamo), runtime)
    guard = Guard(view, evidence, settings, runtime.stats, entities.NAMES) \
        if settings.guard_enabled and not settings.shop_flags_pinned else None
    app.extensions["shop"] = ShopState(settings, db, repos, Services.build(repos, settings),
                                       dynamo=dynamo, runtime=runtime, guard=guard,
                                       watch=Watch(evidence, guard, settings.guard_interval_ms / 1000))
    init_observability(app, settings)
    api.register(app)
    web.register(app)
    flags_ui.register(app)
    cli.register(app)
    _register_errors(app)
    readers.init_app(app)
    _dynamodb_budget(app, settings)
    _watch(app)
    _rate_limits(app, settings)
    security.init_app(app, settings)
    return app


def _on_phase_read(runtime, names):
    def seen(state, at):
        runtime.stats.phase_seen(state, at)
        for name in names:
            policy = runtime.exposure(name)
            runtime.stats.exposed(name, policy.compare_percent if state.flags.dual_read else 0.0,
                                  policy.serves(state.phase))
    return seen


def _watch(app: Flask) -> None:
    """A serving worker keeps its reads' evidence and runs the guard (shop.migration.guard),
    from its first request: a CLI command builds the app without serving, and needs neither."""
    state = app.extensions["shop"]

    def start():
        state.watch.start()
    app.before_request_funcs.setdefault(None, []).append(start)


def _register_errors(app: Flask) -> None:
    from werkzeug.exceptions import HTTPException

    from . import api, web
    from .errors import ShopError

    def dispatch(api_handler, web_handler):
        def handler(exc):
            return api_handler(exc) if api.is_api_request() else web_handler(exc)
        return handler

    app.register_error_handler(ShopError, dispatch(api.handle_shop_error, web.handle_shop_error))
    app.register_error_handler(HTTPException, dispatch(api.handle_http_error, web.handle_http_error))
    app.register_error_handler(Exception, dispatch(api.handle_unexpected, web.handle_unexpected))


def _dynamodb_budget(app: Flask, settings: Settings) -> None:
    """Each request waits on DynamoDB at most the dual-read and dual-write limits, in all (shop.aspects.budget)."""
    from flask import g

    from .aspects import budget

    def begin():
        g.dynamodb_budget = budget.begin(settings.dual_read_timeout_ms / 1000, settings.dual_write_timeout_ms / 1000)

    def end(exc):
        token = g.pop("dynamodb_budget", None)
        if token is not None:
            budget.end(token)
    app.before_request_funcs.setdefault(None, []).insert(0, begin)
    app.teardown_request(end)


def _rate_limits(app: Flask, settings: Settings) -> None:
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    from .operators.lockout import Lockout

    # Counters live in Redis, so every gunicorn worker (and every server) counts the same
    # attempts; were Redis unreachable, each worker falls back to its own memory.
    prefix = settings.rate_limit_key_prefix or settings.mysql_database
    limiter = Limiter(get_remote_address, app=app, default_limits=[settings.rate_limit_default],
                      storage_uri=settings.rate_limit_storage_uri,
                      storage_options={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
                      key_prefix=prefix, in_memory_fallback_enabled=True,
                      default_limits_exempt_when=lambda: not _is_api() or _is_preflight())
    if not settings.rate_limit_enabled:
        # No request limits; the limiter stays on for the operators' lockout, which is not one.
        limiter.request_filter(lambda: True)
    app.extensions["rate_limiter"] = limiter  # the decorators below hold it only weakly
    app.extensions["operator_lockout"] = Lockout(limiter, settings.operator_lockout, prefix)
    # One budget per address for every way to try a password or make accounts, API and form
    # alike (as the reference's single authRateLimit does for its two routes).
    auth = limiter.shared_limit(settings.rate_limit_auth, scope="auth", methods=["POST"])
    for endpoint in ("api_auth.register", "api_auth.login", "web.login", "web.register"):
        app.view_functions[endpoint] = auth(app.view_functions[endpoint])


def _is_api() -> bool:
    from flask import request

    return request.path.startswith("/api/")


def _is_preflight() -> bool:
    """A browser's CORS preflight: it asks, it does nothing, so it spends no client's budget
    (a cross-origin frontend would otherwise use two per call)."""
    from flask import request

    return request.method == "OPTIONS"
