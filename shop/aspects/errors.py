"""Errors the routing layer raises."""
from __future__ import annotations

from ..errors import ShopError
from .compare import SECRET_NAMES, attribute_names


class DualReadMismatch(ShopError):
    """Both stores answered a dual read and the answers differ.

    Its text (what a shopper's error page and the API show) names the operation and the
    attributes that differ, never a value: neither the records' (nobody's business) nor the
    read's arguments (a search term, a name: what a visitor typed). `key` keeps the arguments
    for the operator's log and trace, which already carry them."""

    status = 500
    type = "DualReadMismatch"

    def __init__(self, operation: str, key: dict, differences):
        self.operation = operation
        self.key = {k: ("***" if k in SECRET_NAMES else v) for k, v in key.items()}
        self.differences = [d.masked() for d in differences]
        shown = "; ".join(d.shape() for d in self.differences[:10])
        more = f" (and {len(self.differences) - 10} more)" if len(self.differences) > 10 else ""
        super().__init__(f"MySQL and DynamoDB disagree on {operation}: {shown}{more}",
                         details=[{"attribute": d.path or "(value)", "kind": d.kind} for d in self.differences])

    @property
    def attributes(self) -> list[str]:
        return attribute_names(self.differences)


class SecondaryWriteFailed(ShopError):
    """The DynamoDB half of a dual write failed and the policy says to fail the request.
    MySQL's write stands (it is the source of truth) and a repair entry was recorded."""

    status = 503
    type = "SecondaryWriteFailed"
