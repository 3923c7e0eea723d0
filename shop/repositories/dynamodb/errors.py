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
