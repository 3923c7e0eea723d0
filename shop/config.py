"""Settings read from environment variables, with defaults for a local machine."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields


class ConfigError(ValueError):
    """A setting is present but unusable; start-up stops with this message."""


# Published in this repository's history and docs: anyone can sign tokens and cookies with them.
DEVELOPMENT_SECRET_KEY = "dev-only-secret-change-me-in-production"
PUBLISHED_SECRET_KEYS = frozenset({DEVELOPMENT_SECRET_KEY, "change-me-to-a-long-random-string-please"})
ENVIRONMENTS = ("production", "development")


def weak_secret(key: str) -> str | None:
    """Why `key` cannot sign anything outside development, or None when it is strong enough."""
    if key in PUBLISHED_SECRET_KEYS:
        return "is a published example value"
    if len(key) < 32:
        return "is shorter than 32 characters"
    if len(set(key)) < 10:
        return "has fewer than 10 different characters"
    return None


def _list(name: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in os.environ.get(name, "").split(",") if v.strip())


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(name: str, default: float, minimum: float = 0.0, maximum: float = math.inf) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum or math.isnan(value):
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw}")
    return value


def _str(name: str, default: str | None) -> str | None:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class Settings:
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str = "shop"
    mysql_password: str = "shop"
    mysql_database: str = "online_shopping_store"
    mysql_pool_size: int = 10
    mysql_connect_timeout: int = 5
    dynamodb_endpoint: str | None = "http://127.0.0.1:8000"
    dynamodb_table_prefix: str = "shop"
    dynamodb_max_attempts: int = 4
    dynamodb_connect_timeout: int = 2
    dynamodb_read_timeout: int = 5
    dynamodb_batch_attempts: int = 6
    dynamodb_conflict_attempts: int = 4
    dynamodb_backoff_base_ms: int = 25
    dynamodb_backoff_cap_ms: int = 500
    dynamodb_filtered_read_limit: int = 2000
    aws_region: str = "us-east-1"
    shop_env: str = "production"
    secret_key: str = DEVELOPMENT_SECRET_KEY
    secret_key_fallbacks: tuple = ()
    jwt_expires_hours: int = 24
    bcrypt_rounds: int = 12
    rate_limit_enabled: bool = True
    rate_limit_default: str = "1000 per 15 minutes"
    rate_limit_auth: str = "20 per 15 minutes"
    rate_limit_storage_uri: str = "redis://127.0.0.1:6379/0"
    rate_limit_key_prefix: str | None = None
    payment_delay_ms: int = 0
    max_content_length: int = 1024 * 1024
    port: int = 5000
    trusted_proxies: int = 0
    shop_flags: str = "READ_MYSQL,WRITE_MYSQL"
    shop_flags_pinned: bool = False
    dual_read_mode: str = "raise"
    dual_read_timeout_ms: int = 2000
    dual_read_workers: int = 8
    dual_read_execution: str = "auto"
    dual_read_recheck_ms: int = 50
    dual_write_policy: str = "repair"
    breaker_threshold: int = 5
    breaker_cooldown_s: int = 30
    call_log_level: str = "INFO"
    flags_cookie_max_age: int = 8 * 3600
    flags_page_password: str | None = None
    operators_file: str | None = None
    operator_lockout: str = "5 per 15 minutes"
    jaeger_ui_url: str | None = None  # set: the flag page links traces there
    cors_origins: tuple = ("http://localhost:3000",)
    recent_spans: int = 2000
    testing: bool = False
    # The migration journey: how soon workers see a new phase, the gates' window and id headroom.
    phase_refresh_ms: int = 2000
    gate_compare_window_s: int = 300
    id_gap: int = 10000
    dual_write_timeout_ms: int = 1500
    # Gradual exposure (shop/aspects/exposure.py): defaults of the per-entity policy the phase
    # document holds; the shadow pool; the evidence the gates ask for; the guard's limits.
    compare_percent: float = 100.0
    compare_mode: str = "inline"
    shadow_workers: int = 2
    shadow_queue: int = 32
    gate_min_comparisons: int = 100
    limit_mismatch_rate: float = 0.01
    limit_error_rate: float = 0.05
    limit_latency_ratio: float = 4.0
    limit_latency_floor_ms: int = 250
    guard_enabled: bool = True
    guard_window_s: int = 60
    guard_min_samples: int = 20
    guard_interval_ms: int = 1000
    evidence_retention_h: int = 48
    extra: dict = field(default_factory=dict)

    @property
    def phase_refresh_s(self) -> float:
        return self.phase_refresh_ms / 1000

    @property
    def development(self) -> bool:
        return self.shop_env == "development"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Read the environment; keyword overrides win (tests use them)."""
        values = dict(
            mysql_host=_str("MYSQL_HOST", cls.mysql_host),
            mysql_port=_int("MYSQL_PORT", cls.mysql_port, 1),
            mysql_user=_str("MYSQL_USER", cls.mysql_user),
            mysql_password=os.environ.get("MYSQL_PASSWORD", cls.mysql_password),
            mysql_database=_str("MYSQL_DATABASE", cls.mysql_database),
            mysql_pool_size=_int("MYSQL_POOL_SIZE", cls.mysql_pool_size, 1),
            mysql_connect_timeout=_int("MYSQL_CONNECT_TIMEOUT", cls.mysql_connect_timeout, 1),
            # Unset in production: boto3 then uses the real regional endpoint.
            dynamodb_endpoint=os.environ.get("DYNAMODB_ENDPOINT", cls.dynamodb_endpoint) or None,
            dynamodb_table_prefix=_str("DYNAMODB_TABLE_PREFIX", cls.dynamodb_table_prefix),
            dynamodb_max_attempts=_int("DYNAMODB_MAX_ATTEMPTS", cls.dynamodb_max_attempts, 1),
            dynamodb_connect_timeout=_int("DYNAMODB_CONNECT_TIMEOUT", cls.dynamodb_connect_timeout, 1),
            dynamodb_read_timeout=_int("DYNAMODB_READ_TIMEOUT", cls.dynamodb_read_timeout, 1),
            dynamodb_filtered_read_limit=_int("DYNAMODB_FILTERED_READ_LIMIT", cls.dynamodb_filtered_read_limit, 1),
            aws_region=_str("AWS_REGION", _str("AWS_DEFAULT_REGION", cls.aws_region)),
            shop_env=_str("SHOP_ENV", cls.shop_env).lower(),
            secret_key=_str("SECRET_KEY", cls.secret_key),
            secret_key_fallbacks=_list("SECRET_KEY_FALLBACKS"),
            jwt_expires_hours=_int("JWT_EXPIRES_HOURS", cls.jwt_expires_hours, 1),
            bcrypt_rounds=_int("BCRYPT_ROUNDS", cls.bcrypt_rounds, 4),
            rate_limit_enabled=_bool("RATE_LIMIT_ENABLED", cls.rate_limit_enabled),
            rate_limit_default=_str("RATE_LIMIT_DEFAULT", cls.rate_limit_default),
            rate_limit_auth=_str("RATE_LIMIT_AUTH", cls.rate_limit_auth),
            rate_limit_storage_uri=_str("RATE_LIMIT_STORAGE_URI", cls.rate_limit_storage_uri),
            rate_limit_key_prefix=_str("RATE_LIMIT_KEY_PREFIX", None),
            payment_delay_ms=_int("PAYMENT_DELAY_MS", cls.payment_delay_ms),
            max_content_length=_int("MAX_CONTENT_LENGTH", cls.max_content_length, 1024),
            port=_int("PORT", cls.port, 1),
            trusted_proxies=_int("TRUSTED_PROXIES", cls.trusted_proxies),
            shop_flags=os.environ.get("SHOP_FLAGS", cls.shop_flags),
            shop_flags_pinned=_bool("SHOP_FLAGS_PINNED", cls.shop_flags_pinned),
            dual_read_mode=_str("SHOP_DUAL_READ_MODE", cls.dual_read_mode),
            dual_read_timeout_ms=_int("SHOP_DUAL_READ_TIMEOUT_MS", cls.dual_read_timeout_ms, 1),
            dual_read_workers=_int("SHOP_DUAL_READ_WORKERS", cls.dual_read_workers, 1),
            dual_read_execution=_str("SHOP_DUAL_READ_EXECUTION", cls.dual_read_execution),
            dual_read_recheck_ms=_int("SHOP_DUAL_READ_RECHECK_MS", cls.dual_read_recheck_ms, 0),
            dual_write_policy=_str("SHOP_DUAL_WRITE_POLICY", cls.dual_write_policy),
            breaker_threshold=_int("SHOP_BREAKER_THRESHOLD", cls.breaker_threshold, 1),
            breaker_cooldown_s=_int("SHOP_BREAKER_COOLDOWN_S", cls.breaker_cooldown_s, 1),
            call_log_level=_str("SHOP_CALL_LOG_LEVEL", cls.call_log_level).upper(),
            flags_cookie_max_age=_int("SHOP_FLAGS_COOKIE_MAX_AGE", cls.flags_cookie_max_age, 60),
            flags_page_password=_str("SHOP_FLAGS_PAGE_PASSWORD", None),
            operators_file=_str("SHOP_OPERATORS_FILE", None),
            operator_lockout=_str("SHOP_OPERATOR_LOCKOUT", cls.operator_lockout),
            jaeger_ui_url=_str("JAEGER_UI_URL", cls.jaeger_ui_url),
            # As the reference backend: CORS_ORIGIN || 'http://localhost:3000' (here a list, comma-separated).
            cors_origins=_list("CORS_ORIGIN") or cls.cors_origins,
            recent_spans=_int("SHOP_RECENT_SPANS", cls.recent_spans),
            phase_refresh_ms=_int("SHOP_PHASE_REFRESH_MS", cls.phase_refresh_ms, 100),
            gate_compare_window_s=_int("SHOP_GATE_COMPARE_WINDOW_S", cls.gate_compare_window_s),
            id_gap=_int("SHOP_ID_GAP", cls.id_gap, 1),
            dual_write_timeout_ms=_int("SHOP_DUAL_WRITE_TIMEOUT_MS", cls.dual_write_timeout_ms, 1),
            compare_percent=_float("SHOP_COMPARE_PERCENT", cls.compare_percent, 0, 100),
            compare_mode=_str("SHOP_COMPARE_MODE", cls.compare_mode),
            shadow_workers=_int("SHOP_SHADOW_WORKERS", cls.shadow_workers, 1),
            shadow_queue=_int("SHOP_SHADOW_QUEUE", cls.shadow_queue, 0),
            gate_min_comparisons=_int("SHOP_GATE_MIN_COMPARISONS", cls.gate_min_comparisons),
            limit_mismatch_rate=_float("SHOP_LIMIT_MISMATCH_RATE", cls.limit_mismatch_rate, 0, 1),
            limit_error_rate=_float("SHOP_LIMIT_ERROR_RATE", cls.limit_error_rate, 0, 1),
            limit_latency_ratio=_float("SHOP_LIMIT_LATENCY_RATIO", cls.limit_latency_ratio, 1),
            limit_latency_floor_ms=_int("SHOP_LIMIT_LATENCY_FLOOR_MS", cls.limit_latency_floor_ms),
            guard_enabled=_bool("SHOP_GUARD", cls.guard_enabled),
            guard_window_s=_int("SHOP_GUARD_WINDOW_S", cls.guard_window_s, 5),
            guard_min_samples=_int("SHOP_GUARD_MIN_SAMPLES", cls.guard_min_samples, 1),
            guard_interval_ms=_int("SHOP_GUARD_INTERVAL_MS", cls.guard_interval_ms, 100),
            evidence_retention_h=_int("SHOP_EVIDENCE_RETENTION_H", cls.evidence_retention_h, 1),
        )
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {sorted(unknown)}")
        values.update(overrides)
        from .aspects.flags import FlagError, Flags

        try:
            Flags.parse(values["shop_flags"])
        except FlagError as exc:
            raise ConfigError(f"SHOP_FLAGS={values['shop_flags']!r}: {exc}") from None
        if values["dual_read_mode"] not in ("raise", "report"):
            raise ConfigError(f"SHOP_DUAL_READ_MODE must be raise or report, got {values['dual_read_mode']!r}")
        if values["dual_read_execution"] not in ("auto", "inline", "concurrent", "mysql-pooled"):
            raise ConfigError("SHOP_DUAL_READ_EXECUTION must be auto, inline, concurrent or mysql-pooled, "
                              f"got {values['dual_read_execution']!r}")
        if values["compare_mode"] not in ("inline", "shadow"):
            raise ConfigError(f"SHOP_COMPARE_MODE must be inline or shadow, got {values['compare_mode']!r}")
        if values["dual_write_policy"] not in ("repair", "raise"):
            raise ConfigError(f"SHOP_DUAL_WRITE_POLICY must be repair or raise, got {values['dual_write_policy']!r}")
        if values["call_log_level"] not in ("DEBUG", "INFO", "WARNING"):
            raise ConfigError(f"SHOP_CALL_LOG_LEVEL must be DEBUG, INFO or WARNING, got {values['call_log_level']!r}")
        _check_origins(values["cors_origins"])
        _check_secrets(values)
        _check_operators(values)
        return cls(**values)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """Every key that verifies a signature, newest (the signing key) first."""
        return (self.secret_key, *self.secret_key_fallbacks)


def _check_origins(origins) -> None:
    """Exact origins only: credentials may not go with "*" (browsers refuse it, and the API
    would answer any site's scripts)."""
    for origin in origins:
        if not re.fullmatch(r"https?://[^/\s*]+", origin):
            raise ConfigError(f"CORS_ORIGIN must list origins such as http://localhost:3000 (scheme, host and port,"
                              f" no path or wildcard), got {origin!r}")


def _check_secrets(values: dict) -> None:
    if values["shop_env"] not in ENVIRONMENTS:
        raise ConfigError(f"SHOP_ENV must be production or development, got {values['shop_env']!r}")
    values["secret_key_fallbacks"] = tuple(values["secret_key_fallbacks"])
    if len(values["secret_key"]) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters (it signs tokens and cookies)")
    if values["shop_env"] == "development":
        return
    hint = ("Generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'. "
            "On a developer's machine, `make run` keeps a generated key outside git, "
            "or set SHOP_ENV=development to accept the published development key.")
    if values["secret_key"] == DEVELOPMENT_SECRET_KEY and not os.environ.get("SECRET_KEY"):
        raise ConfigError("SECRET_KEY is not set: it signs bearer tokens, session cookies and flag cookies. " + hint)
    for name, key in [("SECRET_KEY", values["secret_key"])] + [
            ("a key in SECRET_KEY_FALLBACKS", k) for k in values["secret_key_fallbacks"]]:
        reason = weak_secret(key)
        if reason:
            raise ConfigError(f"{name} {reason}: anyone could forge tokens and cookies with it. " + hint)


def _check_operators(values: dict) -> None:
    from limits import parse

    from .operators.accounts import LEGACY_NAME, weak_secret as weak_operator_secret

    try:
        parse(values["operator_lockout"])
    except ValueError:
        raise ConfigError("SHOP_OPERATOR_LOCKOUT must be a limit such as '5 per 15 minutes', "
                          f"got {values['operator_lockout']!r}") from None
    password = values["flags_page_password"]
    reason = weak_operator_secret(password, LEGACY_NAME) if password is not None else None
    if reason:  # in development too: a page that moves the store's data is not guarded by "a"
        raise ConfigError(f"SHOP_FLAGS_PAGE_PASSWORD {reason}: anyone could guess it. Better, give each "
                          "operator an account of their own (SHOP_OPERATORS_FILE and `scripts/flask.sh "
                          "operator add NAME`) and unset it.")
