"""The boto3 client, item codec and the patterns every DynamoDB repository shares:
pagination, batches with unprocessed-item retries, transactions with bounded
backoff on conflicts, and the 400 KB item-size guard."""
from __future__ import annotations

import contextvars
import random
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ...inflight import signal_sent
from .errors import DynamoDBError, ItemTooLargeError, TransactionConflictError, error_code

MAX_ITEM_BYTES = 400 * 1024
_ser, _de = TypeSerializer(), TypeDeserializer()
# Codes botocore's standard mode already retried, or that no retry fixes: the call failed.
_UNAVAILABLE = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                "InternalServerError", "ServiceUnavailable", "ResourceNotFoundException"}


# Set while a call runs on a thread nothing can abandon (a request's own): the client then makes
# one attempt whose waits end at the dual-read limit, instead of its retries of full timeouts
# (4 x 5 s: a stalled DynamoDB held such a request 20 s).
_impatient: contextvars.ContextVar[bool] = contextvars.ContextVar("shop_dynamodb_impatient", default=False)


@contextmanager
def impatient():
    token = _impatient.set(True)
    try:
        yield
    finally:
        _impatient.reset(token)


def make_client(settings, *, patience_s: float | None = None):
    """A DynamoDB client. With no endpoint configured, boto3's defaults apply: the
    region's real endpoint and the default credential provider chain. With `patience_s`: one
    attempt, each wait (connecting, reading) at most that long."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1 if patience_s else settings.dynamodb_max_attempts},
        connect_timeout=min(settings.dynamodb_connect_timeout, patience_s or settings.dynamodb_connect_timeout),
        read_timeout=patience_s or settings.dynamodb_read_timeout,
        # A backfill or verify of 4 segments keeps about 4 x 8 requests in flight; a request
        # beyond the pool gets a connection that is closed after it (a new TCP connection each).
        max_pool_connections=max(32, settings.mysql_pool_size),
    )
    kwargs = {"region_name": settings.aws_region, "config": config}
    if settings.dynamodb_endpoint:
        kwargs["endpoint_url"] = settings.dynamodb_endpoint
        # DynamoDB Local accepts any credentials; real AWS never sees these.
        session = boto3.session.Session()
        if session.get_credentials() is None:
            kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")
    client = boto3.client("dynamodb", **kwargs)
    client.meta.events.register("before-send.dynamodb", signal_sent)
    return client


def iso(dt: datetime) -> str:
    """Sortable UTC timestamp text (naive datetimes are UTC, as MySQL's are here)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f")


def utcnow() -> datetime:
    """Second precision, as MySQL's TIMESTAMP columns store it."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def encode(item: dict) -> dict:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def decode(item: dict | None) -> dict | None:
    return None if item is None else {k: _de.deserialize(v) for k, v in item.items()}


def value(v) -> dict:
    return _ser.serialize(v)


def item_size(item: dict) -> int:
    """DynamoDB's size accounting: attribute name bytes plus value bytes."""
    return sum(len(k.encode()) + _value_size(v) for k, v in item.items())


def _value_size(v) -> int:
    (kind, raw), = v.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        digits = len(raw.lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + _value_size(x) for k, x in raw.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in raw)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(x).encode()) for x in raw)
    return len(str(raw))


def check_size(item: dict, what: str) -> None:
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        raise ItemTooLargeError(f"{what} would be {size} bytes; DynamoDB items are limited to "
                                f"{MAX_ITEM_BYTES} bytes", size=size)


class Dynamo:
    """One client plus the table names for a prefix; shared by the repositories."""

    def __init__(self, settings, client=None):
        self.settings = settings
        self.prefix = settings.dynamodb_table_prefix
        self._client = client
        self._impatient_client = None
        self._lock = threading.Lock()
        self.sleep = time.sleep  # backoff waits; swapped in tests that count them

    @property
    def client(self):
        if _impatient.get():
            if self._impatient_client is None:
                with self._lock:
                    if self._impatient_client is None:
                        self._impatient_client = make_client(
                            self.settings, patience_s=self.settings.dual_read_timeout_ms / 1000)
            return self._impatient_client
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(self.settings)
        return self._client

    def table(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    # --- calls with errors translated -------------------------------------------------

    def call(self, operation: str, **kwargs):
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            if code in _UNAVAILABLE:
                raise DynamoDBError(f"DynamoDB {operation} failed: {code}", code=code, cause=exc) from exc
            raise
        except BotoCoreError as exc:
            raise DynamoDBError(f"DynamoDB is unreachable: {type(exc).__name__}",
                                code=type(exc).__name__, cause=exc) from exc

    def get(self, table: str, key: dict, consistent: bool = True) -> dict | None:
        r = self.call("get_item", TableName=table, Key=encode(key), ConsistentRead=consistent)
        return decode(r.get("Item"))

    def query_all(self, **kwargs) -> list[dict]:
        """Every page of a query, following LastEvaluatedKey."""
        items, start = [], None
        while True:
            if start:
                kwargs["ExclusiveStartKey"] = start
            r = self.call("query", **kwargs)
            items.extend(decode(i) for i in r.get("Items", []))
            start = r.get("LastEvaluatedKey")
            if not start:
                return items

    def scan_all(self, **kwargs):
        """Every item of a scan, page by page (for verify and backfill, never on a request)."""
        start = None
        while True:
            if start:
                kwargs["ExclusiveStartKey"] = start
            r = self.call("scan", **kwargs)
            yield from (decode(i) for i in r.get("Items", []))
            start = r.get("LastEvaluatedKey")
            if not start:
                return

    def batch_get(self, table: str, keys: list[dict], consistent: bool = True) -> list[dict]:
        """BatchGetItem in chunks of 100, retrying UnprocessedKeys with jittered backoff."""
        return self.batch_get_tables({table: keys}, consistent)[table]

    def batch_get_tables(self, wanted: dict[str, list[dict]], consistent: bool = True) -> dict[str, list[dict]]:
        """Items of several tables in as few BatchGetItem requests as the 100-key limit allows."""
        pending = [(table, key) for table, keys in wanted.items() for key in
                   {tuple(sorted((k, str(v)) for k, v in key.items())): key for key in keys}.values()]
        found: dict[str, list[dict]] = {table: [] for table in wanted}
        for start in range(0, len(pending), 100):
            request: dict = {}
            for table, key in pending[start:start + 100]:
                request.setdefault(table, {"Keys": [], "ConsistentRead": consistent})["Keys"].append(encode(key))
            for attempt in range(self.settings.dynamodb_batch_attempts):
                r = self.call("batch_get_item", RequestItems=request)
                for table, items in r.get("Responses", {}).items():
                    found[table].extend(decode(i) for i in items)
                request = r.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._backoff(attempt)
            else:
                raise DynamoDBError("DynamoDB left keys unprocessed after retries",
                                    code="UnprocessedKeys")
        return found

    def batch_delete(self, table: str, keys: list[dict]) -> None:
        """BatchWriteItem deletes in chunks of 25, retrying UnprocessedItems."""
        self.batch_write(table, [{"DeleteRequest": {"Key": encode(k)}} for k in keys])

    def batch_put(self, table: str, items: list[dict]) -> None:
        """BatchWriteItem puts (unconditional) in chunks of 25, retrying UnprocessedItems."""
        self.batch_write(table, [{"PutRequest": {"Item": encode(i)}} for i in items])

    def batch_write(self, table: str, writes: list[dict]) -> None:
        """BatchWriteItem of put and delete requests, 25 a request, retrying UnprocessedItems."""
        for start in range(0, len(writes), 25):
            request = {table: writes[start:start + 25]}
            for attempt in range(self.settings.dynamodb_batch_attempts):
                r = self.call("batch_write_item", RequestItems=request)
                request = r.get("UnprocessedItems") or {}
                if not request:
                    break
                self._backoff(attempt)
            else:
                raise DynamoDBError("DynamoDB left writes unprocessed after retries", code="UnprocessedItems")

    def transact(self, items: list[dict], token: str | None = None):
        """TransactWriteItems; conflicts are retried with bounded jittered backoff,
        failed conditions are returned to the caller (never retried)."""
        if len(items) > 100:
            raise ValueError("a transaction holds at most 100 actions")
        kwargs = {"TransactItems": items}
        if token:
            kwargs["ClientRequestToken"] = token
        attempts = self.settings.dynamodb_conflict_attempts
        for attempt in range(attempts):
            try:
                return self.call("transact_write_items", **kwargs)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                codes = cancellation_codes(exc)
                if "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes:
                    if attempt + 1 < attempts:
                        self._backoff(attempt)
                        continue
                    raise TransactionConflictError("The change collided with concurrent changes; try again",
                                                   cause=exc) from exc
                raise
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> None:
        base = self.settings.dynamodb_backoff_base_ms / 1000
        cap = self.settings.dynamodb_backoff_cap_ms / 1000
        self.sleep(random.uniform(0, min(cap, base * (2 ** attempt))))


def exists_check(table: str, key: dict) -> dict:
    """A TransactWriteItems action that fails the transaction unless the item exists
    (what a foreign key did in MySQL)."""
    return {"ConditionCheck": {"TableName": table, "Key": encode(key), "ConditionExpression": "attribute_exists(PK)"}}


def holds(item: dict, attributes, prefix: str) -> tuple[str, dict, dict]:
    """A condition (expression, names, values) that an item still holds `item`'s values of
    `attributes` (absent where None), so a write based on an earlier read undoes nothing."""
    parts, names, values = [], {}, {}
    for i, k in enumerate(attributes):
        names[f"#{prefix}{i}"] = k
        if item.get(k) is None:
            parts.append(f"attribute_not_exists(#{prefix}{i})")
        else:
            parts.append(f"#{prefix}{i} = :{prefix}{i}")
            values[f":{prefix}{i}"] = item[k]
    return " AND ".join(parts), names, values


def newer_than_held(version: int, prefix: str = "") -> tuple[str, dict, dict]:
    """A condition (expression, names, values) that the item holds an older version than
    `version`, or none (written before versions): how a mirrored copy is kept only if newer."""
    return (f"(attribute_not_exists(#{prefix}ver) OR #{prefix}ver < :{prefix}ver)", {f"#{prefix}ver": "version"},
            {f":{prefix}ver": int(version)})


def next_version(prefix: str = "") -> tuple[str, dict, dict]:
    """An update clause (SET part, names, values) moving a DynamoDB-first write's version on."""
    return (f"#{prefix}ver = if_not_exists(#{prefix}ver, :{prefix}zero) + :{prefix}one", {f"#{prefix}ver": "version"},
            {f":{prefix}zero": 0, f":{prefix}one": 1})


def held_version(item: dict | None) -> int:
    return int(item.get("version", 0)) if item else 0


def cancellation_codes(exc: ClientError) -> list[str]:
    reasons = exc.response.get("CancellationReasons") or []
    return [r.get("Code", "None") for r in reasons]


def condition_failed(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) == "ConditionalCheckFailedException"


def money(x) -> Decimal:
    return Decimal(x).quantize(Decimal("0.01"))
