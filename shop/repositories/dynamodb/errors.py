"""DynamoDB failures as domain errors that keep the botocore cause and its error code."""
from __future__ import annotations

from ...errors import ConflictError, StoreUnavailableError, ValidationError


class DynamoDBError(StoreUnavailableError):
    """DynamoDB could not serve the call (throttled past retries, 5xx, unreachable)."""

    def __init__(self, message: str, *, code: str | None = None, cause: BaseException | None = None):
        super().__init__(message, store="dynamodb", cause=cause)
        self.code = code


class ItemTooLargeError(ValidationError):
    """The item would exceed DynamoDB's 400 KB limit; refused before any call."""

    status = 413
    type = "ItemTooLargeError"

    def __init__(self, message: str, *, size: int):
        super().__init__(message)
        self.size = size


class TransactionConflictError(ConflictError):
    """Concurrent transactions kept colliding after the bounded retries."""

    def __init__(self, message: str, *, cause: BaseException | None = None):
        super().__init__(message)
        self.cause = cause
        self.code = "TransactionConflict"


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


class Superseded(Exception):
    """A mirrored copy older than (or the same as) what DynamoDB holds: dropped, never applied
    over a newer state. Both stores order a record's changes by its version (MySQL bumps it
    with each change), so copies that arrive out of order still leave DynamoDB at MySQL's
    last committed state. Not a failure: the newer copy is already there."""

    def __init__(self, what: str, held, offered):
        super().__init__(f"{what}: DynamoDB holds version {held}, the copy is version {offered}")
        self.what, self.held, self.offered = what, held, offered


class Diverged(Exception):
    """A mirrored write was applied, but DynamoDB lacked part of what MySQL changed (a cart
    line MySQL removed that DynamoDB never had): a copy still on its way could bring it back,
    so the entities named are recorded for repair, which copies MySQL's state again."""

    def __init__(self, targets, why: str):
        super().__init__(why)
        self.targets = list(targets)
