"""Compare two results attribute by attribute, on domain values, never on string dumps.

`normalise` maps what legitimately differs between the stores onto one form:
Decimal/int/float by numeric value, datetimes to UTC seconds, bool as 0/1, and None,
missing and empty ("" or []) as None. Lists keep their order unless the route says the
operation promises none (then they are matched by `id`). Everything else that differs
is a Difference.
"""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from ..domain import Product

SECRET_NAMES = frozenset({"password_hash", "password", "token", "cardNumber", "cvv", "secret"})


class Difference(NamedTuple):
    path: str      # "items[2].quantity", "" for the whole value
    kind: str      # changed | missing | extra | type | missing_item | extra_item
    mysql: Any
    dynamodb: Any

    def masked(self) -> "Difference":
        """Secrets replaced by *** (also inside whole records)."""
        if self.path.split(".")[-1].split("[")[0] in SECRET_NAMES:
            return self._replace(mysql=_mask(self.mysql), dynamodb=_mask(self.dynamodb))
        return self._replace(mysql=_mask_inside(self.mysql), dynamodb=_mask_inside(self.dynamodb))

    def shape(self) -> str:
        """Where and how the stores differ, without the values (for shoppers' errors and logs)."""
        return f"{self.path or '(value)'}: {self.kind}"

    def describe(self) -> str:
        d = self.masked()
        return f"{d.path or '(value)'}: {d.kind}: MySQL={_show(d.mysql)} DynamoDB={_show(d.dynamodb)}"


def _mask(v):
    return v if v is None else "***"


def _mask_inside(v):
    if isinstance(v, dict):
        return {k: (_mask(x) if k in SECRET_NAMES else _mask_inside(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [_mask_inside(x) for x in v]
    return v


def _show(v) -> str:
    if v is None:
        return "absent"
    if isinstance(v, dict):
        return f"{{record with {len(v)} attributes, id={v.get('id', '?')}}}"
    if isinstance(v, list):
        return f"[{len(v)} elements]"
    if isinstance(v, datetime):
        return v.isoformat()
    return repr(format(v, "f") if isinstance(v, Decimal) else v)


def normalise(value, unordered: frozenset = frozenset(), path: str = ""):
    """The value's comparable form: scalars by `_scalar`, records as dicts of their compared
    fields, lists in order (by id where the route promises no order). None and empties: None."""
    if value is None:
        return None
    scalar = _scalar(value)
    if scalar is not _NOT_SCALAR:
        return scalar
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = _fields(value)
    if isinstance(value, dict):
        out = {k: normalise(v, unordered, _join(path, k)) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None} or None
    if isinstance(value, (list, tuple, set, frozenset)):
        return _normalise_list(value, unordered, path)
    return value


_NOT_SCALAR = object()


def _scalar(value):
    """Numbers by numeric value, datetimes in UTC to the second, bools as 0/1, "" as None;
    _NOT_SCALAR for anything else."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, Decimal)):
        try:
            d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:
            return value
        return d.normalize() if d.is_finite() else d
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.replace(microsecond=0)
    if isinstance(value, str):
        return value or None
    return _NOT_SCALAR


def _fields(record) -> dict:
    """A record's compared fields: one declared compare=False is not part of the value (as for
    the type's own ==); derived properties results promise (total_pages) are."""
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.compare}
    for name in ("total_pages",):
        if hasattr(type(record), name):
            fields[name] = getattr(record, name)
    return fields


def _normalise_list(value, unordered: frozenset, path: str):
    items = [normalise(v, unordered, f"{path}[]") for v in value]
    if _strip(path) in unordered or isinstance(value, (set, frozenset)):
        if items and all(isinstance(i, dict) and "id" in i for i in items):
            return Keyed((i["id"], i) for i in items)  # matched by id, whatever the order
        items.sort(key=repr)
    return items or None


class Keyed(dict):
    """The elements of a list that promises no order, by their id."""


def own(value):
    """A cart, an order or a page of orders without the whole products they join in: those
    are compared as products of their own (their own reads, verify), and a hot product's
    stock, changed by other shoppers between the two stores' reads, is not this record's
    difference. What an order shows of its products (OrderedProduct: names, no stock) is
    the order's own: DynamoDB stores it in the order, so it is compared with the order."""
    fields, is_dataclass, replace = dataclasses.fields, dataclasses.is_dataclass, dataclasses.replace
    if isinstance(value, list):
        return [own(v) for v in value]
    if not is_dataclass(value) or isinstance(value, type):
        return value
    names = {f.name for f in fields(value)}
    changes = {}
    if "product" in names and "product_id" in names and isinstance(value.product, Product):
        changes["product"] = None
    if "items" in names and isinstance(value.items, list):
        changes["items"] = own(value.items)
    return replace(value, **changes) if changes else value


def records_of(value) -> list:
    """The records a read returned: a record, a list of them, or a page's items."""
    records = value.items if isinstance(getattr(value, "items", None), list) else value
    return records if isinstance(records, list) else [records]


def _versioned(value) -> dict:
    """{(record type, id): record} of the records a read returned that carry a version."""
    return {(type(r).__name__, r.id): r for r in records_of(value)
            if dataclasses.is_dataclass(r) and getattr(r, "version", 0) and getattr(r, "id", None) is not None}


def record_versions(value) -> dict[tuple[str, int], int]:
    """{(record type, id): version} of the records a read returned (a record, a list, a page),
    where the stores keep a version for them (0: none known)."""
    return {k: r.version for k, r in _versioned(value).items()}


def in_flight(first_mysql: dict, last_mysql: dict, last_dynamodb: dict) -> bool:
    """Whether a difference still seen at a dual read's last look is writes on their way: the
    records are being written (MySQL's versions moved since the first look) and DynamoDB holds,
    of every record MySQL still has, at least the version MySQL had at the first look (each
    write reaches DynamoDB within the dual-write deadline, which the last look waited out).
    A record DynamoDB holds older than that, or a difference while nothing writes, stays a
    mismatch."""
    moving = any(last_mysql.get(k, v) != v for k, v in first_mysql.items())
    return bool(first_mysql) and moving and all(last_dynamodb.get(k, 0) >= v for k, v in first_mysql.items()
                                               if k in last_mysql)


def same_version_differs(mysql, dynamodb) -> bool:
    """Whether a record both stores hold at one version differs between them: no write in
    flight explains that (a copy carries its version), so it is a divergence, whatever else is
    being written meanwhile (an item changed behind the application keeps its version)."""
    ours, theirs = _versioned(mysql), _versioned(dynamodb)
    return any(theirs[k].version == r.version and diff(own(r), own(theirs[k]))
               for k, r in ours.items() if k in theirs)


def diff(mysql, dynamodb, unordered: frozenset = frozenset()) -> list[Difference]:
    """Every attribute whose normalised values differ; empty when equivalent."""
    if mysql == dynamodb:  # equal values normalise alike; the common case costs one comparison
        return []
    out: list[Difference] = []
    _walk(normalise(mysql, unordered), normalise(dynamodb, unordered), "", out)
    return out


def _walk(a, b, path, out):
    if a == b:
        return
    if a is None or b is None:
        whole = path == "" or path.endswith("]")  # a whole record, not one of its attributes
        kind = ("missing" if b is None else "extra") + ("_item" if whole else "")
        out.append(Difference(path, kind, a, b))
        return
    children = _children(a, b, path)
    if children is None:
        out.append(Difference(path, "changed" if type(a) is type(b) else "type", a, b))
        return
    for a_child, b_child, child_path in children:
        _walk(a_child, b_child, child_path, out)


def _children(a, b, path):
    """The pairs of elements two containers of one kind hold, with their paths; None for leaves."""
    if isinstance(a, Keyed) and isinstance(b, Keyed):
        return [(a.get(k), b.get(k), f"{path}[id={format(k, 'f') if isinstance(k, Decimal) else k}]")
                for k in sorted(set(a) | set(b))]
    if isinstance(a, dict) and isinstance(b, dict):
        return [(a.get(k), b.get(k), _join(path, k)) for k in sorted(set(a) | set(b))]
    if isinstance(a, list) and isinstance(b, list):
        return [(a[i] if i < len(a) else None, b[i] if i < len(b) else None, f"{path}[{i}]")
                for i in range(max(len(a), len(b)))]
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else str(key)


def _strip(path: str) -> str:
    return path.replace("[]", "")


def attribute_names(differences) -> list[str]:
    """Paths without list positions: what a span or a log may carry."""
    seen = []
    for d in differences:
        name = ".".join(p.split("[")[0] + ("[]" if "[" in p else "") for p in d.path.split(".")) or "(value)"
        if name not in seen:
            seen.append(name)
    return seen
