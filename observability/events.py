"""One structured record, two destinations: a JSON log line and an event on the current span.

Jaeger shows a span's events as its logs, so the fields an operator greps for in the logs
(operation, flags, stores, key, outcome, attribute names, repair targets) are also there,
next to the timings. Callers pass keys, names and counts, never record values; fields whose
name suggests a secret are masked in both destinations all the same.
"""
from __future__ import annotations

import logging
import os
import re
from functools import lru_cache

from opentelemetry import trace

MASK = "***"
_SECRET = re.compile(r"pass|secret|token|authoriz|cookie|credential|api_?key", re.IGNORECASE)
# SHOP_SPAN_EVENTS=off keeps the log lines and drops the span events (smaller spans).
ENABLED = os.environ.get("SHOP_SPAN_EVENTS", "on").strip().lower() not in ("off", "false", "0", "no")


def wanted(logger: logging.Logger, level: int, span=None) -> bool:
    """Would emit() write anything? Lets a caller skip building the fields."""
    span = span if span is not None else trace.get_current_span()
    return (ENABLED and span.is_recording()) or logger.isEnabledFor(level)


def emit(logger: logging.Logger, level: int, message: str, fields: dict, span=None, exc_info=False) -> None:
    """Log `message` with `fields` and add them as the span event `message` on `span`
    (default: the current span) when it is recording."""
    if any(map(_is_secret, fields)):
        fields = {k: (MASK if _is_secret(k) and v is not None else v) for k, v in fields.items()}
    span = span if span is not None else trace.get_current_span()
    if ENABLED and span.is_recording():
        span.add_event(message, _attributes(fields))
    if logger.isEnabledFor(level):
        logger.log(level, message, extra=fields, exc_info=exc_info, stacklevel=2)


@lru_cache(maxsize=1024)  # field names are few and fixed; a regex search per field per call is not
def _is_secret(name: str) -> bool:
    return bool(_SECRET.search(name))


def _attributes(fields: dict) -> dict:
    """Span attributes take strings, numbers, booleans and lists of one of them; None is dropped."""
    out = {}
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, (list, tuple, set, frozenset)):
            out[key] = [str(v) for v in value]
        else:
            out[key] = str(value)
    return out
