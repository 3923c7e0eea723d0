"""The routing cookie: flags signed with the app's secret, with a bounded lifetime.

Anything but a valid, unexpired signature means "no cookie": the server default applies
and a warning is logged. A visitor cannot forge flags to skip MySQL on their writes.
"""
from __future__ import annotations

import logging

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..aspects.flags import FlagError, Flags

NAME = "shop_flags"
MAX_LENGTH = 512  # a valid cookie is about 80 characters
log = logging.getLogger("shop.flags")


class FlagCookie:
    def __init__(self, secret, max_age: int):
        self.serializer = URLSafeTimedSerializer(secret, salt="shop-flags")
        self.max_age = max_age

    def dumps(self, flags: Flags) -> str:
        return self.serializer.dumps(list(flags.names))

    def loads(self, raw: str | None) -> tuple[Flags | None, str | None]:
        """(flags, None) for a valid cookie; (None, why) otherwise."""
        if raw is None:
            return None, None
        if len(raw) > MAX_LENGTH:
            return None, "oversized"
        try:
            names = self.serializer.loads(raw, max_age=self.max_age)
        except SignatureExpired:
            return None, "expired"
        except BadSignature:
            return None, "bad signature"
        except Exception:  # undecodable payloads
            return None, "malformed"
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return None, "malformed"
        try:
            return Flags.from_names(names), None
        except FlagError:
            return None, "impossible flags"

    def set(self, response, flags: Flags, secure: bool) -> None:
        response.set_cookie(NAME, self.dumps(flags), max_age=self.max_age, httponly=True, samesite="Lax",
                            secure=secure, path="/")

    def clear(self, response, secure: bool) -> None:
        response.delete_cookie(NAME, path="/", httponly=True, samesite="Lax", secure=secure)
