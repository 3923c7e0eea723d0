"""One routed call as one object: what was called (its route in the routing table, MySQL's
original method, the DynamoDB counterpart), with what arguments, by which flags, under which span.
The router's methods take it, instead of eight values passed through each (as OpenTelemetry's
call context or LaunchDarkly's executor hold one operation)."""
from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.trace import Span

from ..errors import StoreUnavailableError
from .flags import Flags
from .table import READ, Route


@dataclass(frozen=True)
class Outcome:
    """What one store answered: a value, or the error it raised."""
    value: object = None
    error: BaseException | None = None

    def unwrap(self):
        if self.error is not None:
            raise self.error
        return self.value

    def describe(self) -> str:
        return f"raised {type(self.error).__name__}" if self.error else "returned a value"


def store_failed(error) -> bool:
    """Whether an error is the store failing (down, or too late), not an answer such as NotFound."""
    return isinstance(error, (StoreUnavailableError, TimeoutError))


def timed_out(what: str = "DynamoDB read exceeded the dual-read timeout") -> Outcome:
    return Outcome(error=TimeoutError(what))


@dataclass(frozen=True)
class Call:
    route: Route
    flags: Flags
    original: object          # MySQL's repository method, unwrapped (bound to its instance)
    ddb_repo: object          # the DynamoDB repository of the same name
    arguments: object         # shop.aspects.weave.Arguments: by parameter name, bound when asked
    args: tuple
    kwargs: dict
    span: Span
    entity: str | None = None  # the migrated entity the route concerns (shop/migration/entities/)
    authority: str = ""        # the store whose answer a read returns: the flags', or the canary's

    def __post_init__(self):
        if not self.authority:
            object.__setattr__(self, "authority", self.flags.authority)

    @property
    def name(self) -> str:
        return self.route.name

    def mysql(self):
        return self.original(*self.args, **self.kwargs)

    def dynamodb(self, **extra):
        return getattr(self.ddb_repo, self.route.target)(*self.args, **self.kwargs, **extra)

    @property
    def stores(self) -> str:
        """The stores the flags send it to, as logs name them."""
        both = self.flags.dual_read if self.route.kind == READ else self.flags.dual_write
        one = self.flags.read_mysql if self.route.kind == READ else self.flags.write_mysql
        return "mysql+dynamodb" if both else ("mysql" if one else "dynamodb")

    @property
    def key(self) -> dict:
        """The arguments that name what is read or written (the route's `key`)."""
        return {k: self.arguments.get(k) for k in self.route.key if k in self.arguments}

    @property
    def key_text(self) -> str:
        return ",".join(f"{k}={v!s}"[:80] for k, v in self.key.items())

    @property
    def key_attributes(self) -> dict:
        return {f"shop.key.{k}": str(v)[:200] for k, v in self.key.items()}
