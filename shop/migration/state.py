"""The server-wide migration phase as data: durable, versioned, audited, read by every worker.

The document lives in MySQL (`migration_state`) and in DynamoDB (an item of the counters
table), written to both with a version number; a reader takes the higher version of the two it
can reach, so the state survives either store being down or MySQL being retired in phase 5.
Beside the phase, `entities` holds each entity's read exposure (shop.aspects.exposure: the
share of requests compared, how, and the read canary's share of readers) and when it last changed.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from botocore.exceptions import ClientError

from ..aspects.flags import PRESETS, Flags
from ..repositories.dynamodb.client import condition_failed, encode

log = logging.getLogger("shop.migration")
SCOPE = "server"
_DDB_KEY = {"PK": "MIGRATION#server"}



def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def shown(dt: datetime | None) -> str | None:
    """A stored time (naive UTC) as people read it, with its zone."""
    return f"{dt:%Y-%m-%d %H:%M:%S} UTC" if dt else None


def parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def phase_of(flags: Flags) -> int | None:
    p = flags.preset
    return p.number if p else None


def flags_of(phase: int) -> Flags:
    return PRESETS[phase - 1].flags


@dataclass(frozen=True)
class PhaseState:
    flags: Flags
    version: int = 0                      # 0: nothing stored, SHOP_FLAGS applies
    doc: dict = field(default_factory=dict)

    @property
    def phase(self) -> int | None:
        return phase_of(self.flags)

    @property
    def label(self) -> str:
        return str(self.phase) if self.phase else f"custom ({self.flags})"

    @property
    def source(self) -> str:
        """stored: changed at runtime; SHOP_FLAGS: nothing stored yet (a document may still hold
        marks of backfill and verify runs made before the first phase change)."""
        return "stored" if self.doc.get("flags") else "SHOP_FLAGS"

    def mark(self, name: str) -> dict:
        return self.doc.get("marks", {}).get(name) or {}

    def policy(self, entity: str) -> dict:
        """The entity's read exposure as the document holds it (shop.aspects.exposure)."""
        return (self.doc.get("entities") or {}).get(entity) or {}

    def rollout(self, entity: str) -> float:
        """The share of readers DynamoDB serves the entity's reads to in phase 3 (its canary)."""
        return float(self.policy(entity).get("read_rollout_percent", 0))

    def step_of(self, entity: str) -> tuple[datetime | None, int]:
        """Since when, and from which document version on, the entity's reads have been exposed
        as they are now: the later of its last exposure change and the phase's start. Evidence
        since the step is evidence counted under that version or later (shop.migration.evidence)."""
        policy = self.policy(entity)
        since = max((t for t in (parse(self.doc.get("phase_since")), parse(policy.get("since"))) if t), default=None)
        return since, max(int(self.doc.get("phase_version") or 0), int(policy.get("since_version") or 0))

    def as_dict(self) -> dict:
        p = self.phase
        return {"phase": p, "label": self.label, "name": PRESETS[p - 1].name if p else "custom",
                "flags": str(self.flags), "version": self.version, "source": self.source,
                "changed_at": self.doc.get("changed_at"), "changed_by": self.doc.get("changed_by"),
                "reason": self.doc.get("reason"), "phase_since": self.doc.get("phase_since"),
                "dual_write_since": self.doc.get("dual_write_since"),
                "mysql_behind_since": self.doc.get("mysql_behind_since"), "marks": self.doc.get("marks", {}),
                "entities": self.doc.get("entities", {})}


class ConcurrentChange(RuntimeError):
    """Someone else changed the state since it was read."""


class PhaseStore:
    def __init__(self, db, dynamo):
        self.db, self.dynamo = db, dynamo
        self._quick_dynamo = None
        # The two stores' reads of the document run at once; a stalled read keeps its thread
        # until its client's timeout, so a few are kept for the polls that follow.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="phase-read")

    # --- reading ------------------------------------------------------------------------

    @property
    def _quick(self):
        """DynamoDB with short timeouts and one retry, for the poll (never on a request's path)."""
        if self._quick_dynamo is None:
            self._quick_dynamo = type(self.dynamo)(replace(self.dynamo.settings, dynamodb_connect_timeout=1,
                                                           dynamodb_read_timeout=1, dynamodb_max_attempts=2))
        return self._quick_dynamo

    def _mysql(self):
        with self.db.cursor() as cur:
            cur.execute("SELECT version, doc FROM migration_state WHERE scope = %s", (SCOPE,))
            row = cur.fetchone()
        return (int(row["version"]), json.loads(row["doc"])) if row else (0, None)

    def _dynamodb(self, dynamo=None):
        dynamo = dynamo or self.dynamo
        item = dynamo.get(dynamo.table("counters"), _DDB_KEY)
        return (int(item["version"]), json.loads(item["doc"])) if item else (0, None)

    def load(self, default: Flags, wait_s: float | None = None) -> PhaseState:
        """The newest state the stores hold (both are read, at once: either may have taken a
        change the other missed); SHOP_FLAGS' value when neither holds one. Raises only when no
        store can be read. With `wait_s` (a worker's background poll), DynamoDB is asked with
        short timeouts and what has answered after `wait_s` is taken: a stalled store never holds
        the poll, and the other's copy serves."""
        quick = wait_s is not None
        reads = [self._pool.submit(self._mysql),
                 self._pool.submit(self._dynamodb, self._quick if quick else None)]
        done, _ = futures_wait(reads, timeout=wait_s)
        found, errors = [], []
        for read in reads:
            if read not in done:
                errors.append(TimeoutError("the phase read did not answer in time"))
            elif read.exception() is not None:
                errors.append(read.exception())
            else:
                found.append(read.result())
        if not found:
            raise errors[0]
        version, doc = max(found, key=lambda vd: vd[0])
        if not version:
            return PhaseState(default)
        return PhaseState(Flags.parse(doc["flags"]) if doc.get("flags") else default, version, doc)

    # --- writing ------------------------------------------------------------------------

    def save(self, doc: dict, expected: int, quick: bool = False) -> int:
        """Write version expected+1 to every store that answers; refuse if the newest stored
        version is no longer `expected`. Returns the new version. `quick` (the guard, stepping
        back from a stalled DynamoDB) asks DynamoDB with the poll's short timeouts."""
        version = expected + 1
        text = json.dumps(doc, sort_keys=True)
        written, errors = 0, []
        try:
            with self.db.cursor(write=True) as cur:
                if expected == 0:
                    cur.execute("INSERT IGNORE INTO migration_state (scope, version, doc) VALUES (%s, %s, %s)",
                                (SCOPE, version, text))
                else:
                    cur.execute("UPDATE migration_state SET version = %s, doc = %s WHERE scope = %s AND version = %s",
                                (version, text, SCOPE, expected))
                if cur.rowcount != 1 and self._mysql()[0] > expected:
                    raise ConcurrentChange("the migration state changed meanwhile; read it again")
                if cur.rowcount != 1:  # MySQL lagged behind DynamoDB (written while MySQL was down)
                    cur.execute("REPLACE INTO migration_state (scope, version, doc) VALUES (%s, %s, %s)",
                                (SCOPE, version, text))
            written += 1
        except ConcurrentChange:
            raise
        except Exception as exc:  # noqa: BLE001 - MySQL down or retired: DynamoDB alone holds it
            errors.append(exc)
        dynamo = self._quick if quick else self.dynamo
        try:
            dynamo.call("put_item", TableName=dynamo.table("counters"),
                        Item=encode({**_DDB_KEY, "version": version, "doc": text}),
                        ConditionExpression="attribute_not_exists(version) OR version < :v",
                        ExpressionAttributeValues=encode({":v": version}))
            written += 1
        except ClientError as exc:
            if not condition_failed(exc):
                errors.append(exc)
            elif not written:
                raise ConcurrentChange("the migration state changed meanwhile; read it again") from exc
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        if not written:
            raise errors[0]
        for exc in errors:
            log.warning("migration state written to one store only",
                        extra={"event": "phase", "error_type": type(exc).__name__})
        return version

    def audit(self, entry: dict) -> None:
        row = (entry["who"][:200], str(entry["from"]), str(entry["to"])[:20], bool(entry["forced"]), entry["outcome"],
               (entry.get("reason") or "")[:1000], json.dumps(entry["gates"]))
        try:
            with self.db.cursor(write=True) as cur:
                cur.execute("INSERT INTO migration_audit (who, from_phase, to_phase, forced, outcome, reason, gates)"
                            " VALUES (%s, %s, %s, %s, %s, %s, %s)", row)
            return
        except Exception:  # noqa: BLE001 - kept in DynamoDB instead
            pass
        at = iso(now())
        self.dynamo.call("put_item", TableName=self.dynamo.table("counters"),
                         Item=encode({"PK": f"AUDIT#{at}", "entry": json.dumps({**entry, "at": at})}))

    def history(self, limit: int = 20) -> list[dict]:
        out = []
        try:
            with self.db.cursor() as cur:
                cur.execute("SELECT at, who, from_phase, to_phase, forced, outcome, reason, gates"
                            " FROM migration_audit ORDER BY id DESC LIMIT %s", (limit,))
                for r in cur.fetchall():
                    out.append({"at": iso(r["at"]), "who": r["who"], "from": r["from_phase"], "to": r["to_phase"],
                                "forced": bool(r["forced"]), "outcome": r["outcome"], "reason": r["reason"],
                                "gates": json.loads(r["gates"])})
        except Exception:  # noqa: BLE001
            pass
        try:
            items = self.dynamo.scan_all(TableName=self.dynamo.table("counters"), FilterExpression="begins_with(PK, :a)",
                                         ExpressionAttributeValues=encode({":a": "AUDIT#"}))
            out += [json.loads(i["entry"]) for i in items]
        except Exception:  # noqa: BLE001
            pass
        return sorted(out, key=lambda e: e["at"] or "", reverse=True)[:limit]

    # --- what dual reads saw (the gate into phase 4 reads it) ----------------------------

    def record_mismatch(self, operation: str, outcome: str, attributes, server_phase) -> None:
        try:
            with self.db.cursor(write=True) as cur:
                cur.execute("INSERT INTO migration_mismatches (operation, outcome, attributes, server_phase)"
                            " VALUES (%s, %s, %s, %s)",
                            (operation, outcome, ",".join(attributes)[:1000], str(server_phase)))
        except Exception:  # noqa: BLE001 - the comparison is logged and counted regardless
            log.warning("mismatch not recorded", extra={"event": "compare", "operation": operation})

    def mismatches_since(self, since: datetime) -> int:
        with self.db.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM migration_mismatches WHERE at >= %s AND outcome = 'mismatch'",
                        (since,))
            return int(cur.fetchone()["n"])


class PhaseView:
    """One worker's view of the server phase. A thread of the worker's own re-reads it every
    `refresh_s` seconds, so a change reaches every worker within that period (plus one read),
    busy or idle, without a restart; requests only ever take the last state read: none waits on
    a store (a stalled DynamoDB once held one request per period for the client's full timeout).
    A worker's first requests wait for its first read, `first_wait_s` at most; when neither
    store answers by then, SHOP_FLAGS applies until one does, and health says the phase is unread."""

    def __init__(self, store: PhaseStore, default: Flags, refresh_s: float, first_wait_s: float = 3.0):
        self.store, self.default, self.refresh_s, self.first_wait_s = store, default, refresh_s, first_wait_s
        self._state = PhaseState(default)
        self._read_at: float | None = None   # monotonic time of the last successful read
        self._first = threading.Event()      # set once the first read ended, well or not
        self._lock = threading.Lock()        # one explicit refresh at a time
        self._started = threading.Lock()
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._failing = False
        self.read_at: float | None = None  # wall clock of the last successful read (staleness)
        self.on_read = None                # called with each state read (the phase gauges)

    def current(self) -> PhaseState:
        if self._poller is None:
            self._start()
        if not self._first.is_set():
            self._first.wait(self.first_wait_s)
        return self._state

    def age_s(self) -> float | None:
        """Seconds since this worker last read the phase document; None: never read yet."""
        return None if self._read_at is None else time.monotonic() - self._read_at

    def refresh(self, wait_s: float | None = None) -> PhaseState:
        """Read now, waiting for both stores (the CLI, the phase switch, tests); with `wait_s`,
        as the poll does: DynamoDB asked with short timeouts, what answered by then taken."""
        with self._lock:
            self._refresh(wait_s)
            return self._state

    def close(self) -> None:
        self._stop.set()

    def _start(self) -> None:
        with self._started:
            if self._poller is None:
                self._poller = threading.Thread(target=_poll, args=(weakref.ref(self), self._stop),
                                                name="phase-refresh", daemon=True)
                self._poller.start()

    def _refresh(self, wait_s: float | None) -> None:
        from opentelemetry.instrumentation.utils import suppress_instrumentation

        try:
            with suppress_instrumentation():  # a poll every few seconds is not a trace worth keeping
                state = self.store.load(self.default, wait_s)
        except Exception as exc:  # noqa: BLE001 - keep routing by the last known phase
            if isinstance(exc, RuntimeError) and "schedule new futures after" in str(exc):
                self._stop.set()  # the worker is exiting (its pools refuse work): not an outage
                return
            if not self._failing:  # once per outage, not once per poll
                log.warning("migration phase could not be read; keeping the last known one",
                            extra={"event": "phase", "error_type": type(exc).__name__, "phase": self._state.label})
            self._failing = True
            return
        finally:
            self._first.set()
        if self._failing:
            log.info("migration phase read again", extra={"event": "phase", "phase": state.label})
        self._failing = False
        self._read_at, self.read_at = time.monotonic(), time.time()
        if wait_s is not None and state.version < self._state.version:
            return  # a poll that read before an explicit refresh read a newer version
        if state.version != self._state.version and self._state.version:
            # A mark (backfill, verify) or an exposure change is a new version of the same phase.
            moved = state.label != self._state.label
            log.log(logging.INFO if moved else logging.DEBUG,
                    "migration phase changed" if moved else "migration phase document changed",
                    extra={"event": "phase", "from": self._state.label, "to": state.label, "version": state.version})
        self._state = state
        if self.on_read is not None:
            self.on_read(state, self.read_at)


def _poll(ref, stop: threading.Event) -> None:
    """The view's poll: holds it weakly, so an application dropped (tests) stops its thread."""
    while not stop.is_set():
        view = ref()
        if view is None:
            return
        view._refresh(wait_s=max(0.5, view.refresh_s))
        interval = view.refresh_s
        del view
        stop.wait(interval)


def at_step(policy: dict, rollout: float, at: str, version: int) -> dict:
    """An entity's policy at a new canary step: the share of readers DynamoDB serves, and from
    when (time and the document version that holds it) its evidence counts."""
    return {**policy, "read_rollout_percent": rollout, "since": at, "since_version": version}


def next_doc(current: PhaseState, target: int, who: str, reason: str, forced: bool) -> dict:
    """The document of a move to phase `target`: who, when, why; when dual writing and "MySQL
    is behind" began or ended. Every read canary ends with the phase it ran in (phase 4 reads
    DynamoDB for all; below 3 nothing is compared): a new phase starts its exposure at 0."""
    flags = flags_of(target)
    doc = dict(current.doc)
    at = iso(now())
    # Saved over current.version, the document becomes version + 1: the phase's evidence starts there.
    doc.update(flags=str(flags), phase=target, changed_at=at, changed_by=who, reason=reason, forced=forced,
               phase_since=at, phase_version=current.version + 1)
    if not flags.write_mysql:
        doc["mysql_behind_since"] = None  # MySQL is not written: nothing routes around it
    elif not current.flags.write_mysql:
        # MySQL lacks what DynamoDB took alone until the late copy ends (shop.migration.catchup).
        doc["mysql_behind_since"] = at
    if not flags.dual_write:
        doc["dual_write_since"] = None
    elif not current.flags.dual_write or not doc.get("dual_write_since"):
        doc["dual_write_since"] = at
    doc.setdefault("marks", {})
    doc["entities"] = {name: at_step(policy, 0, at, current.version + 1) for name, policy in (doc.get("entities") or {}).items()}
    doc.pop("read_rollout_percent", None)
    return doc


def update_state(view: PhaseView, change, attempts: int = 5) -> PhaseState | None:
    """Save `change(current)`, the new doc, re-reading and trying again after a concurrent
    change; `change` returns None when there is nothing to save. Returns the state the saved
    doc replaced, or None."""
    for _ in range(attempts):
        current = view.refresh()
        doc = change(current)
        if doc is None:
            return None
        try:
            view.store.save(doc, current.version)
        except ConcurrentChange:
            continue
        view.refresh()
        return current
    raise ConcurrentChange("the migration state kept changing; run again")


def keep_mysql_behind(view: PhaseView) -> None:
    """Set the 'MySQL is behind' mark again if it was cleared while a copy back was deferred
    (shop.migration.catchup): the entity stays journaled, and writes touching it must keep going
    to DynamoDB first until a copy succeeds."""
    def mark(current):
        if not current.version or not current.flags.write_mysql or current.doc.get("mysql_behind_since"):
            return None
        return {**current.doc, "mysql_behind_since": iso(now())}
    if update_state(view, mark) is not None:
        log.warning("MySQL marked behind again: a copy back was deferred", extra={"event": "phase"})
