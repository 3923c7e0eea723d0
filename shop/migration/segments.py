"""The engine of the sync runs at scale: backfill, verify and the reverse copy (jobs.py) walk the
data in chunks, in segments, from a checkpoint.

Each segment makes two sweeps. The MySQL sweep walks each entity's ids in its segment's id
range with keyset pages (`id > last ORDER BY id LIMIT chunk`), reading each page from both
stores at once (one IN query, one BatchGetItem per 100 keys) and writing what differs with
BatchWriteItem. The DynamoDB sweep scans the segment's share of each table (DynamoDB's own
parallel scan: Segment i of N) for entities MySQL lacks. Every page ends with a checkpoint,
so a stopped run resumes where it was, and N processes given `--segment 0..N-1` share a run.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from ..repositories.dynamodb.client import decode, encode
from . import entities
from .checkpoint import FINISHED, KEEP, Checkpoints, Run
from .copies import Copier
from .pages import mysql_chunk

log = logging.getLogger("shop.migration")
LISTS = ("left", "failed", "divergent")


@dataclass
class Report:
    done: Counter = field(default_factory=Counter)            # outcome -> count
    left: list = field(default_factory=list)                  # (entity, id, why) not touched
    failed: list = field(default_factory=list)                # (entity, id, error)
    divergent: list = field(default_factory=list)             # (entity, id, attribute names, kinds)
    compared: Counter = field(default_factory=Counter)        # entity -> count
    beyond: Counter = field(default_factory=Counter)          # findings counted but not listed (resumed runs)
    complete: bool = True                                     # False: other segments of the run still run
    run: Run | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and not self.divergent and not self.beyond["failed"] and not self.beyond["divergent"]

    def total(self, kind: str) -> int:
        return len(getattr(self, kind)) + self.beyond[kind]

    def merge(self, other: "Report") -> None:
        self.done.update(other.done)
        self.compared.update(other.compared)
        self.beyond.update(other.beyond)
        for kind in LISTS:
            getattr(self, kind).extend(getattr(other, kind))

    def found(self) -> dict:
        """What a checkpoint keeps: exact counts, the first KEEP findings of each kind."""
        out = {"done": dict(self.done), "compared": dict(self.compared)}
        for kind in LISTS:
            items = getattr(self, kind)
            out[kind] = [[e, i, *(x if isinstance(x, list) else str(x) for x in rest)]
                         for e, i, *rest in items[:KEEP]]
            out[kind + "_count"] = self.total(kind)
        return out

    @classmethod
    def from_found(cls, found: dict) -> "Report":
        r = cls(done=Counter(found.get("done", {})), compared=Counter(found.get("compared", {})))
        for kind in LISTS:
            listed = [tuple(x) for x in found.get(kind, [])]
            if kind == "failed":
                listed = [(e, i, RuntimeError(why)) for e, i, why in listed]
            getattr(r, kind).extend(listed)
            r.beyond[kind] = max(0, found.get(kind + "_count", len(listed)) - len(listed))
        return r


class Meter:
    """Rows done, rate and ETA, told to `progress(line)` at most every `every` seconds."""

    def __init__(self, progress, label: str, total: int, every: float = 2.0):
        self.progress, self.label, self.total, self.every = progress, label, max(total, 0), every
        self.rows, self.started, self.told = 0, time.monotonic(), 0.0
        self.lock = threading.Lock()

    def add(self, rows: int, step: str, final: bool = False) -> None:
        with self.lock:
            self.rows += rows
            now = time.monotonic()
            if self.progress is None or (not final and now - self.told < self.every):
                return
            self.told = now
            elapsed = max(now - self.started, 1e-6)
            rate = self.rows / elapsed
            total = max(self.total, self.rows)
            if final:  # rows counts MySQL ids walked and DynamoDB items scanned alike
                self.progress(f"{self.label}: done: {self.rows:,} MySQL rows and DynamoDB items read"
                              f" in {timedelta(seconds=round(elapsed))}, {rate:,.0f} a second (an entity is"
                              " a row in MySQL and one item or more in DynamoDB: the summary counts entities)")
                return
            eta = timedelta(seconds=round((total - self.rows) / rate)) if rate > 0 else "?"
            self.progress(f"{self.label}: {step}: {self.rows:,} of ~{total:,} rows, {rate:,.0f} rows/s, ETA {eta}")


def make_plan(db, segments: int) -> dict:
    """Each entity's id space cut into `segments` ranges at the same points for every process:
    boundaries from MIN/MAX id now; ids created later fall in the last range."""
    plan = {}
    with db.cursor() as cur:
        for e in entities.REGISTRY:
            entity, table, column = e.name, e.mysql_table, e.keyset_column
            cur.execute(f"SELECT MIN({column}) AS lo, MAX({column}) AS hi FROM {table}")
            row = cur.fetchone()
            lo, hi = row["lo"] or 0, row["hi"] or 0
            width = hi - lo + 1
            plan[entity] = [lo + (k + 1) * width // segments for k in range(segments - 1)]
    return plan


def bounds(run: Run, entity: str, segment: int) -> tuple[int | None, int | None]:
    cuts = run.plan[entity]
    return (cuts[segment - 1] if segment > 0 else None, cuts[segment] if segment < run.segments - 1 else None)


def owns(run: Run, segment: int, entity: str, entity_id) -> bool:
    lower, upper = bounds(run, entity, segment)
    i = int(entity_id)
    return (lower is None or i >= lower) and (upper is None or i < upper)


def estimate(state, segments: int) -> int:
    """Rows a segment will walk, roughly (table statistics, not counts): for the ETA only."""
    try:
        with state.db.cursor() as cur:
            tables = [e.mysql_table for e in entities.REGISTRY]
            cur.execute("SELECT COALESCE(SUM(TABLE_ROWS), 0) AS n FROM information_schema.TABLES WHERE"
                        f" TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({', '.join(['%s'] * len(tables))})", tables)
            mysql_rows = int(cur.fetchone()["n"])
        ddb_rows = sum(int(state.dynamo.call("describe_table", TableName=state.dynamo.table(t))["Table"]
                           .get("ItemCount", 0)) for t in entities.DYNAMODB_TABLES)
        return (mysql_rows + ddb_rows) // segments
    except Exception:  # noqa: BLE001 - no estimate: progress shows rows and rate only
        return 0


class SegmentRun:
    """One segment of a run: its sweeps, resumed from its checkpoint."""

    def __init__(self, job, run: Run, segment: int, chunk: int, meter: Meter):
        self.job, self.run, self.segment, self.chunk, self.meter = job, run, segment, chunk, meter
        self.checkpoints = job.checkpoints

    def execute(self) -> Report:
        steps = self.checkpoints.steps(self.run, self.segment)
        if steps.get(FINISHED, {}).get("done"):
            return Report.from_found(steps[FINISHED]["found"])
        report = Report()
        for name, sweep in self.job.steps():
            saved = steps.get(name, {})
            if saved.get("done"):
                report.merge(Report.from_found(saved["found"]))
                continue
            part = Report.from_found(saved["found"]) if saved else Report()
            sweep(self, name, saved.get("cursor"), part)
            report.merge(part)
        self.job.finish_segment(self, report)
        self.checkpoints.save(self.run, self.segment, FINISHED, None, True, report.found())
        return report

    def mysql_sweep(self, entity: str, step: str, cursor, part: Report) -> None:
        """Keyset pages of the entity's ids in this segment's range. Page k+1 is read (ids, both
        stores, what its writes depend on: `job.load_page`) while page k is applied
        (`job.apply_page`: the writes); the checkpoint moves after each applied page."""
        lower, upper = bounds(self.run, entity, self.segment)
        db = self.job.state.db

        def read(after):
            ids = mysql_chunk(db, entity, after, lower, upper, self.chunk)
            return ids, (self.job.load_page(entity, ids) if ids else None)
        after = cursor
        with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as ahead:
            pending = ahead.submit(read, after)
            while True:
                ids, loaded = pending.result()
                if not ids:
                    break
                pending = ahead.submit(read, ids[-1])
                self.job.apply_page(entity, ids, loaded, part)
                after = ids[-1]
                self.checkpoints.save(self.run, self.segment, step, after, False, part.found())
                self.meter.add(len(ids), f"segment {self.segment} {entity}")
        self.checkpoints.save(self.run, self.segment, step, after, True, part.found())

    def ddb_sweep(self, table: str, step: str, cursor, part: Report) -> None:
        dynamo = self.job.state.dynamo
        kinds = {e.ddb_kind: e for e in entities.REGISTRY if e.ddb_table == table}
        projection, names = entities.ddb_projection(table)
        kwargs = dict(TableName=dynamo.table(table), Segment=self.segment, TotalSegments=self.run.segments,
                      ProjectionExpression=projection, ExpressionAttributeNames=names, ConsistentRead=True)
        # An entity of several items (a cart's lines) shares a partition: its items straddle pages at most.
        seen = {e.name: set() for e in kinds.values() if e.several_items}
        while True:
            if cursor:
                kwargs["ExclusiveStartKey"] = encode(cursor)
            r = dynamo.call("scan", **kwargs)
            found: dict[str, set[int]] = {}
            for item in (decode(i) for i in r.get("Items", [])):
                e = kinds.get(item.get("entity"))
                if e is not None:
                    found.setdefault(e.name, set()).add(int(item[e.ddb_id]))
            for name, ids in seen.items():
                if name in found:
                    found[name] -= ids
                    ids |= found[name]
            for entity in entities.NAMES:  # parents before children
                if found.get(entity):
                    self.job.ddb_page(entity, sorted(found[entity]), part)
            cursor = decode(r["LastEvaluatedKey"]) if r.get("LastEvaluatedKey") else None
            self.checkpoints.save(self.run, self.segment, step, cursor, cursor is None, part.found())
            self.meter.add(r.get("ScannedCount", 0), f"segment {self.segment} scan of {table}")
            if cursor is None:
                return


class Job:
    """One run of an operation over segments; subclasses say what a chunk does."""
    operation = ""

    def __init__(self, state, control=None, progress=None, run: str | None = None, segments: int = 1,
                 segment: int | None = None, chunk: int = 100, resume: bool = False):
        if segments < 1 or (segment is not None and not 0 <= segment < segments):
            raise ValueError(f"--segment must be between 0 and {segments - 1}")
        if not 1 <= chunk <= 1000:
            raise ValueError("--chunk must be between 1 and 1000")
        self.state, self.control, self.progress = state, control, progress
        self.segments, self.segment, self.chunk = segments, segment, chunk
        self.name = run or f"{self.operation}:auto"
        self.resume = resume and run is not None
        self.checkpoints = Checkpoints(state.db)
        self.copier = Copier.of(state.db, state.dynamo)
        self.journal = state.runtime.journal

    def steps(self):
        """(step name, sweep(segment_run, step, cursor, part)) in order."""
        raise NotImplementedError

    def sweeps(self):
        """The MySQL sweep of each entity, parents first, then the DynamoDB scan of each table."""
        return ([(f"mysql:{e}", lambda seg, step, cur, part, e=e: seg.mysql_sweep(e, step, cur, part))
                 for e in entities.NAMES],
                [(f"ddb:{t}", lambda seg, step, cur, part, t=t: seg.ddb_sweep(t, step, cur, part))
                 for t in entities.DYNAMODB_TABLES])

    def load_page(self, entity: str, ids: list[int]):
        """A MySQL page's reads (run one page ahead, on another thread): what apply_page needs."""

    def apply_page(self, entity: str, ids: list[int], loaded, part: Report) -> None:
        """A MySQL page's writes and findings, in page order."""

    def ddb_page(self, entity: str, ids: list[int], part: Report) -> None:
        """Ids of one kind found by a page of the DynamoDB scan."""

    def plan_more(self) -> dict:
        """What the run decides once, when it is planned, beside the id ranges (kept for resumes
        and for the other processes of the run)."""
        return {}

    def prepare(self) -> None:
        """Before any segment: what every segment needs (read once)."""

    def finish_segment(self, seg: SegmentRun, report: Report) -> None:
        """After a segment's sweeps, before its checkpoint says finished."""

    def finish_run(self, report: Report) -> None:
        """Once every segment of the run has finished (whichever process finished last)."""

    def execute(self) -> Report:
        if not self.resume:
            self.checkpoints.restart(self.name)
        run = self.checkpoints.open(self.name, self.segments, lambda n: {**make_plan(self.state.db, n),
                                                                         **self.plan_more()})
        self.run = run
        if run.resumed and self.progress:
            self.progress(f"{self.name}: resuming the run started {run.started_at:%Y-%m-%d %H:%M:%S} UTC")
        self.prepare()
        mine = range(self.segments) if self.segment is None else [self.segment]
        meter = Meter(self.progress, self.name, estimate(self.state, self.segments) * len(mine))
        runs = [SegmentRun(self, run, i, self.chunk, meter) for i in mine]
        if len(runs) == 1:
            parts = [runs[0].execute()]
        else:
            with ThreadPoolExecutor(len(runs), thread_name_prefix=self.operation) as pool:
                parts = list(pool.map(SegmentRun.execute, runs))
        meter.add(0, "done", final=True)
        report = Report(run=run)
        finished = self.checkpoints.finished(run)
        if finished is None:  # other processes still hold segments: this process's share
            for part in parts:
                report.merge(part)
            report.complete = False
        else:
            for i in sorted(finished):
                report.merge(parts[list(mine).index(i)] if i in mine else Report.from_found(finished[i]))
            run.completed_at = max(f["updated_at"] for f in finished.values())
            self.finish_run(report)
        return report
