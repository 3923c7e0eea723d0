"""Errors the routing layer raises."""
from __future__ import annotations

from ..errors import ShopError
from .compare import SECRET_NAMES


class DualReadMismatch(ShopError):
    """Both stores answered a dual read and the answers differ."""

    status = 500
    type = "DualReadMismatch"

    def __init__(self, operation: str, key: dict, differences):
        self.operation = operation
        self.key = {k: ("***" if k in SECRET_NAMES else v) for k, v in key.items()}
        self.differences = [d.masked() for d in differences]
        # Attribute names and kinds only: the records' values are nobody's business in an error page.
        shown = "; ".join(d.shape() for d in self.differences[:10])
        more = f" (and {len(self.differences) - 10} more)" if len(self.differences) > 10 else ""
        super().__init__(f"MySQL and DynamoDB disagree on {operation} {self.key}: {shown}{more}",
                         details=[{"attribute": d.path or "(value)", "kind": d.kind} for d in self.differences])

    @property
    def attributes(self) -> list[str]:
        from .compare import attribute_names
        return attribute_names(self.differences)


class SecondaryWriteFailed(ShopError):
    """The DynamoDB half of a dual write failed and the policy says to fail the request.
    MySQL's write stands (it is the source of truth) and a repair entry was recorded."""

    status = 503
    type = "SecondaryWriteFailed"
