"""Where a long sync run is, kept in MySQL so a run can stop and resume, and so several
processes (or machines) can share one run, each taking a segment.

A run is named (`backfill`, `verify`, `reverse-copy`, or an operator's `--run` name) and split
into N segments. Its plan (each entity's id range per segment) is written once, by the
first process to start, so every process cuts the id space at the same points. Each segment
keeps, per step (an entity's MySQL sweep, a DynamoDB table's scan), a cursor, whether it is
done, and what it found so far. A run whose segments are all done is over: the next start of
the same name begins a new one.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ..db import error_code
from .state import now

FINISHED = "#finished"  # the step a segment writes when all its steps are done
KEEP = 200               # details kept per kind of finding (counts are always exact)


@dataclass
class Run:
    name: str
    segments: int
    plan: dict            # entity -> [split points]: segment i covers [p[i], p[i+1]); the last is open
    started_at: datetime  # naive UTC
    resumed: bool = False
    completed_at: datetime | None = None  # once every segment has finished


class Checkpoints:
    def __init__(self, db):
        self.db = db

    def open(self, name: str, segments: int, make_plan) -> Run:
        """The run of this name: the unfinished one if there is one (its segment count must
        match), else a new one planned by `make_plan(segments)`. The tables must exist."""
        for attempt in range(3):
            try:
                return self._open(name, segments, make_plan)
            except Exception as exc:  # noqa: BLE001 - two first starts at once: one deadlocks
                if error_code(exc) != 1213 or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _open(self, name: str, segments: int, make_plan) -> Run:
        with self.db.cursor(write=True) as cur:
            cur.execute("SELECT segments, plan, started_at FROM migration_sync_runs WHERE run = %s FOR UPDATE", (name,))
            row = cur.fetchone()
            if row is not None and not self._over(cur, name, row["segments"]):
                if row["segments"] != segments:
                    raise ValueError(f"run {name!r} is under way with {row['segments']} segments, not {segments}:"
                                     f" finish it with --segments {row['segments']}, or start over with --restart")
                return Run(name, segments, json.loads(row["plan"]), row["started_at"], resumed=True)
            plan = make_plan(segments)
            cur.execute("DELETE FROM migration_sync_progress WHERE run = %s", (name,))
            cur.execute("REPLACE INTO migration_sync_runs (run, segments, plan, started_at) VALUES (%s, %s, %s, %s)",
                        (name, segments, json.dumps(plan), now()))
            cur.execute("SELECT started_at FROM migration_sync_runs WHERE run = %s", (name,))
            return Run(name, segments, plan, cur.fetchone()["started_at"])

    def under_way(self) -> list[dict]:
        """Runs started and not finished (a backfill, a verify, the copy back a move out of phase
        5 makes before it switches): name, start, last progress. An interrupted run stays here
        until the same command resumes it or `--restart` drops it."""
        with self.db.cursor() as cur:
            cur.execute("SELECT r.run, r.segments, r.started_at, MAX(p.updated_at) AS last,"
                        " COALESCE(SUM(p.step = %s AND p.done = 1), 0) AS finished FROM migration_sync_runs r"
                        " LEFT JOIN migration_sync_progress p ON p.run = r.run GROUP BY r.run, r.segments, r.started_at",
                        (FINISHED,))
            rows = cur.fetchall()
        return [{"run": r["run"], "started_at": r["started_at"], "last_progress": r["last"] or r["started_at"]}
                for r in rows if int(r["finished"]) < r["segments"]]

    def restart(self, name: str) -> None:
        with self.db.cursor(write=True) as cur:
            cur.execute("DELETE FROM migration_sync_progress WHERE run = %s", (name,))
            cur.execute("DELETE FROM migration_sync_runs WHERE run = %s", (name,))

    @staticmethod
    def _over(cur, name: str, segments: int) -> bool:
        cur.execute("SELECT COUNT(*) AS n FROM migration_sync_progress WHERE run = %s AND step = %s AND done = 1",
                    (name, FINISHED))
        return cur.fetchone()["n"] >= segments

    def steps(self, run: Run, segment: int) -> dict[str, dict]:
        """step -> {"cursor", "done", "found"} of one segment."""
        with self.db.cursor() as cur:
            cur.execute("SELECT step, cursor_json, done, found FROM migration_sync_progress"
                        " WHERE run = %s AND segment = %s", (run.name, segment))
            return {r["step"]: {"cursor": json.loads(r["cursor_json"]) if r["cursor_json"] else None,
                                "done": bool(r["done"]), "found": json.loads(r["found"]) if r["found"] else {}}
                    for r in cur.fetchall()}

    def save(self, run: Run, segment: int, step: str, cursor, done: bool, found: dict) -> None:
        with self.db.cursor(write=True) as cur:
            cur.execute("REPLACE INTO migration_sync_progress (run, segment, step, cursor_json, done, found, updated_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (run.name, segment, step, None if cursor is None else json.dumps(cursor), int(done),
                         json.dumps(found, default=str), now()))

    def finished(self, run: Run) -> dict[int, dict] | None:
        """Every segment's findings once all are finished, else None."""
        with self.db.cursor() as cur:
            cur.execute("SELECT segment, found, updated_at FROM migration_sync_progress WHERE run = %s AND step = %s"
                        " AND done = 1", (run.name, FINISHED))
            rows = cur.fetchall()
        if len(rows) < run.segments:
            return None
        return {r["segment"]: {**json.loads(r["found"] or "{}"), "updated_at": r["updated_at"]} for r in rows}
