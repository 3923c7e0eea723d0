"""Field validation that collects every problem before refusing a request."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ..errors import ValidationError

USERNAME_RE = re.compile(r"^[A-Za-z0-9_]{3,50}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
PASSWORD_RE = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*[@$!%*?&])")
TAG_RE = re.compile(r"<[^>]*>")
# Numbers as people and JSON write them: ASCII digits only. Python's int() and Decimal() also read
# "1_000" (PEP 515) and other scripts' digits ("٣", "１２"), which no client means as a price.
INT_RE = re.compile(r"\s*[+-]?[0-9]{1,12}\s*", re.ASCII)
DECIMAL_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
MAX_INT = 2_147_483_647


class Checker:
    """Collects field errors; `done()` raises one ValidationError listing them all."""

    def __init__(self, data, location: str = "body"):
        self.data = data if isinstance(data, dict) else {}
        self.location = location
        self.errors: list[dict] = []

    def fail(self, path: str, msg: str) -> None:
        self.errors.append({"type": "field", "msg": msg, "path": path, "location": self.location})

    def text(self, key, *, required=True, min_len=1, max_len=255, msg=None, strip_tags=False,
             pattern=None):
        value = self.data.get(key)
        if value is None or (isinstance(value, str) and value.strip() == "" and not required):
            if required:
                self.fail(key, msg or f"{key} is required")
            return None
        if not isinstance(value, str):
            self.fail(key, msg or f"{key} must be a string")
            return None
        value = value.strip()
        if strip_tags:
            value = TAG_RE.sub("", value).strip()
        if "\x00" in value:
            self.fail(key, f"{key} must not contain NUL characters")
            return None
        if not (min_len <= len(value) <= max_len) or (pattern and not pattern.match(value)):
            self.fail(key, msg or f"{key} must be between {min_len} and {max_len} characters")
            return None
        return value

    def integer(self, key, *, required=True, minimum=None, maximum=MAX_INT, msg=None):
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                self.fail(key, msg or f"{key} is required")
            return None
        parsed = parse_int(value)
        if parsed is None or (minimum is not None and parsed < minimum) or parsed > maximum:
            self.fail(key, msg or f"{key} must be an integer between {minimum} and {maximum}")
            return None
        return parsed

    def money(self, key, *, required=True, minimum=Decimal("0.01"), maximum=Decimal("999999.99"), msg=None):
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                self.fail(key, msg or f"{key} is required")
            return None
        parsed = parse_money(value)
        if parsed is None or not (minimum <= parsed <= maximum):
            self.fail(key, msg or f"{key} must be a number between {minimum} and {maximum}")
            return None
        return parsed

    def done(self) -> None:
        if self.errors:
            raise ValidationError("Validation failed: " + "; ".join(e["msg"] for e in self.errors),
                                  details=self.errors)


def parse_int(value) -> int | None:
    """An int from JSON or a form: 3, 3.0 and '3' are 3; True, '3.5' and 'x' are not ints."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and INT_RE.fullmatch(value):
        return int(value)
    return None


def parse_money(value) -> Decimal | None:
    """A price with at most two decimals; floats go through str() so 19.9 is 19.90."""
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, (int, float, str)) else None
    if isinstance(value, str) and not DECIMAL_RE.fullmatch(text):
        return None
    try:
        d = Decimal(text) if text is not None else None
    except InvalidOperation:
        return None
    if d is None or not d.is_finite() or d.as_tuple().exponent < -2:
        return None
    if d.adjusted() > 20:  # 1e26 would not fit the context's 28 digits with two decimals
        return None
    return d.quantize(Decimal("0.01"))


def positive_id(raw, name: str = "id") -> int:
    """A path or query id; ValidationError unless a positive integer."""
    value = parse_int(raw)
    if value is None or not (1 <= value <= MAX_INT):
        raise ValidationError(f"Invalid {name}")
    return value
