"""Domain errors: one class per failure a caller can act on.

Repositories of both families raise these, never driver exceptions, so the web
layer maps them to the same responses whichever store answered.
"""
from __future__ import annotations


class ShopError(Exception):
    """Base class; `status` and `type` drive the JSON error envelope."""

    status = 500
    type = "InternalError"

    def __init__(self, message: str, *, details=None):
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationError(ShopError):
    status = 400
    type = "ValidationError"


class AuthenticationError(ShopError):
    status = 401
    type = "AuthenticationError"


class PaymentError(ShopError):
    status = 402
    type = "PaymentError"


class AuthorizationError(ShopError):
    status = 403
    type = "AuthorizationError"


class NotFoundError(ShopError):
    status = 404
    type = "NotFoundError"


class ConflictError(ShopError):
    status = 409
    type = "ConflictError"


class DuplicateError(ConflictError):
    """A unique value (username, email, category name, cart line) already exists."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


class InsufficientInventoryError(ShopError):
    status = 400
    type = "InsufficientInventoryError"

    def __init__(self, message: str, *, issues=()):
        super().__init__(message, details=list(issues) or None)
        self.issues = list(issues)


class EmptyCartError(ValidationError):
    type = "EmptyCartError"


class InvalidStateError(ShopError):
    """The entity exists but its state forbids the operation (e.g. cancel a shipped order)."""

    status = 400
    type = "InvalidStateError"


class StoreUnavailableError(ShopError):
    """A database could not be reached or answered with a server-side failure."""

    status = 503
    type = "DatabaseError"

    def __init__(self, message: str, *, store: str, cause: BaseException | None = None):
        super().__init__(message)
        self.store = store
        self.cause = cause


class StoreBusyError(StoreUnavailableError):
    """The database rolled the change back to break a deadlock, more times than we retry:
    nothing was saved, and sending it again will most likely succeed."""
