"""Command-line tasks: `flask --app shop init-db | seed`, the migration's, and `operator` (shop/operators/cli.py)."""
from __future__ import annotations

import sys

import click
from flask import current_app

from .errors import StoreUnavailableError
from .operators.identity import cli_user


def _state():
    return current_app.extensions["shop"]


def register(app) -> None:
    from .operators import cli as operators

    register_migration(app)
    operators.register(app)
    register_categories(app)

    @app.cli.command("init-db")
    def init_db():
        """Create the MySQL tables (idempotent)."""
        state = _state()
        try:
            state.db.create_schema()
        except StoreUnavailableError as exc:
            s = state.settings
            click.echo(f"error: cannot reach MySQL at {s.mysql_host}:{s.mysql_port} as {s.mysql_user}"
                       f" (database {s.mysql_database}): {exc.cause}", err=True)
            sys.exit(1)
        click.echo(f"schema ready in {state.settings.mysql_database}")

    @app.cli.command("seed")
    @click.option("--if-empty", is_flag=True, help="Do nothing when users already exist.")
    def seed_cmd(if_empty):
        """Load the demo catalogue (users, categories, products)."""
        from .seed import DEMO_PASSWORD, seed

        state = _state()
        with state.db.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM users")
            existing = cur.fetchone()["n"]
        if existing:
            if if_empty:
                click.echo(f"seed skipped: {existing} users already present")
                return
            click.echo("error: the database already has users; seed loads into an empty database", err=True)
            sys.exit(1)
        counts = seed(state.repos, state.services.auth)
        click.echo(f"seeded {counts}; log in as demo_user / alice_gadgets / bob_books with {DEMO_PASSWORD}")

    @app.cli.command("ddb-create-tables")
    def ddb_create_tables():
        """Create the DynamoDB tables for DYNAMODB_TABLE_PREFIX (idempotent)."""
        from .repositories.dynamodb.tables import SPEC, create_tables

        dynamo = _state().dynamo
        created = _ddb(lambda: create_tables(dynamo))
        for name in SPEC:
            table = dynamo.table(name)
            click.echo(f"{table}: {'created' if table in created else 'already exists'}")

    @app.cli.command("ddb-delete-tables")
    @click.option("--yes", is_flag=True, help="Really delete them and all their data.")
    def ddb_delete_tables(yes):
        """Delete the DynamoDB tables for DYNAMODB_TABLE_PREFIX."""
        from .repositories.dynamodb.tables import delete_tables

        dynamo = _state().dynamo
        if not yes:
            click.echo(f"error: this deletes every {dynamo.prefix}-* table and its data; add --yes", err=True)
            sys.exit(1)
        for table in _ddb(lambda: delete_tables(dynamo)):
            click.echo(f"{table}: deleted")

    @app.cli.command("ddb-seed-counters")
    @click.option("--gap", type=int, default=None,
                  help="Headroom above MySQL's largest id [default: SHOP_ID_GAP, as the phase switch uses].")
    def ddb_seed_counters(gap):
        """Raise DynamoDB's ID counters above MySQL's largest ids (never lowers them)."""
        from .migration.copies import seed_counters_from_mysql

        state = _state()
        gap = state.settings.id_gap if gap is None else gap
        for entity, (top, counter) in _ddb(lambda: seed_counters_from_mysql(state.db, state.dynamo, gap)).items():
            click.echo(f"{entity}: counter at {counter} (MySQL max {top})")


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _sync_options(operation: str):
    """--segments/--segment/--chunk/--run/--restart: how a run is split, sized and resumed."""
    def decorate(command):
        for option in reversed((
            click.option("--segments", default=1, show_default=True, type=click.IntRange(1, 1000),
                         help="Split the run into N segments (id ranges in MySQL, parallel scan segments "
                              "in DynamoDB)."),
            click.option("--segment", type=int, default=None,
                         help="Run only segment I (0..N-1), so N processes or machines share the run; "
                              "without it, this process runs all N segments at once."),
            click.option("--chunk", default=100, show_default=True, type=click.IntRange(1, 1000),
                         help="Entities per keyset page (read from both stores in one batch each)."),
            click.option("--run", "run_name", default=operation, show_default=True,
                         help="The run's name: its checkpoint. Processes sharing a run use the same name."),
            click.option("--restart", is_flag=True,
                         help="Start over instead of resuming the unfinished run of this name."),
        )):
            command = option(command)
        return command
    return decorate


def _run_args(segments, segment, chunk, run_name, restart) -> dict:
    if segment is not None and not 0 <= segment < segments:
        raise click.BadParameter(f"must be between 0 and {segments - 1}", param_hint="--segment")
    return dict(segments=segments, segment=segment, chunk=chunk, run=run_name, resume=not restart)


def _partial(report) -> None:
    if not report.complete:
        click.echo(f"this process's segment is done; the run {report.run.name!r} completes when every segment"
                   " has finished (run the others, or this command again to see the whole run's result)")


def _report(report, verb: str, noun: str = "entities") -> None:
    ok = sum(n for k, n in report.done.items() if k not in ("left", "copied again"))  # again: already copied
    failed, left = report.total("failed"), report.total("left")
    click.echo(f"{verb} {ok} of {ok + failed} {noun}; {failed} failed; {left} left alone"
               + (f" ({', '.join(f'{n} {k}' for k, n in sorted(report.done.items()))})" if report.done else ""))
    for entity, entity_id, why in report.left[:20]:
        click.echo(f"  left alone: {entity} {entity_id}: {why}")
    if left > 20:
        click.echo(f"  ... and {left - 20} more left alone")
    for entity, entity_id, exc in report.failed[:20]:
        click.echo(f"  failed: {entity} {entity_id}: {type(exc).__name__}: {exc}", err=True)


def _caught_up() -> None:
    """After a copy towards MySQL: once nothing is journaled towards it, writes go MySQL first again."""
    if _state().runtime.mysql_behind() and _control().caught_up():
        click.echo("MySQL has caught up: writes go to MySQL first again")


def _control():
    from .migration.control import PhaseControl
    return PhaseControl(_state())


def register_migration(app) -> None:
    from .migration import jobs
    from .migration.entities import parse_names

    @app.cli.command("repair")
    @click.option("--divergent", is_flag=True,
                  help="Also copy every entity verify finds divergent, from the phase's authoritative store "
                       "(writes lost without an entry, e.g. a worker killed between its two writes).")
    @click.option("--copies", is_flag=True,
                  help="Also finish every fan-out of names into products' and orders' copies that was cut "
                       "short (items holding a copies_pending token; one scan of the catalog and users tables).")
    def repair_cmd(divergent, copies):
        """Replay every pending journal entry in its direction: towards DynamoDB from MySQL's
        state, towards MySQL from DynamoDB's. Only recorded deletions delete."""
        if copies:
            from .repositories.dynamodb.copies import finish_pending
            finished = _ddb(lambda: finish_pending(_state().dynamo))
            click.echo("copies: fan-outs finished: " + ", ".join(f"{k} {n}" for k, n in finished.items()))
        report = _ddb(lambda: jobs.repair(_state(), divergent=divergent, progress=_progress))
        _caught_up()
        if not report.done and not report.failed and not report.left:
            click.echo("nothing to repair: no pending entries" + (" and no divergence" if divergent else ""))
            return
        _report(report, "repaired")
        if report.total("failed"):
            sys.exit(1)

    @app.cli.command("backfill")
    @click.option("--if-dual-writing", is_flag=True,
                  help="Only when the server's phase writes both stores (what `make run` uses: DynamoDB "
                       "Local keeps nothing across restarts).")
    @_sync_options("backfill")
    def backfill_cmd(if_dual_writing, **run):
        """Copy every user, category, product, cart and order from MySQL into DynamoDB (its
        current state; idempotent). Never deletes what only DynamoDB holds: lists it instead."""
        if if_dual_writing and not _state().runtime.server_flags().dual_write:
            click.echo(f"backfill skipped: the server's phase ({_state().runtime.server_flags()}) does not dual-write")
            return
        report = _ddb(lambda: jobs.backfill(_state(), control=_control(), progress=_progress, **_run_args(**run)))
        _report(report, "backfilled")
        _partial(report)
        if report.total("failed"):
            sys.exit(1)

    @app.cli.command("reverse-copy")
    @click.option("--all", "everything", is_flag=True,
                  help="Copy every entity DynamoDB holds, not only those journaled as DynamoDB-only writes.")
    @_sync_options("reverse-copy")
    def reverse_copy_cmd(everything, **run):
        """Copy to MySQL, with their ids, the writes only DynamoDB received (phase 5), then raise
        MySQL's AUTO_INCREMENT past DynamoDB's counters. `phase set 4` from 5 runs this itself."""
        report = _ddb(lambda: jobs.reverse_copy(_state(), progress=_progress, everything=everything,
                                                **_run_args(**run)))
        _caught_up()
        _report(report, "copied to MySQL")
        _partial(report)
        if report.total("failed"):
            sys.exit(1)

    @app.cli.command("verify")
    @click.option("--show", default=20, show_default=True, help="How many divergent entities to list.")
    @_sync_options("verify")
    def verify_cmd(show, **run):
        """Compare MySQL and DynamoDB entity by entity; exit 1 when they diverge."""
        from collections import Counter

        from .migration.entities import NAMES

        report = _ddb(lambda: jobs.verify(_state(), control=_control(), progress=_progress, **_run_args(**run)))
        bad = Counter(e for e, _, _, _ in report.divergent)
        for entity in NAMES:
            click.echo(f"{entity:9} compared {report.compared[entity]:6}  differing {bad[entity]:6}")
        shown = report.divergent[:show]
        late = {(e, i) for e, i, _, _ in jobs.journaled(_state().runtime.journal, shown)}
        for entity, entity_id, names, kinds in shown:
            click.echo(f"  {entity} {entity_id}: {_divergence(names, kinds)}"
                       + ("; written since, journaled: its copy is pending" if (entity, entity_id) in late else ""))
        # Divergent: unexplained. Written since: an entity with an open journal entry (written to one
        # store since; `repair` or the late copy back copies it). Either makes the exit status 1.
        written = report.done["written since"]
        click.echo(f"divergent: {report.total('divergent') - written} of {sum(report.compared.values())}"
                   + (f"; {written} more written since, journaled for the other store (copied by `repair`"
                      " or the late copy back)" if written else ""))
        _partial(report)
        if not report.ok:
            sys.exit(1)

    @app.cli.group("phase")
    def phase_group():
        """The server-wide migration phase: see it, change it behind its gates."""

    @phase_group.command("status")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable.")
    def phase_status(as_json):
        """The phase every worker routes by, its history, and the gates to the phases beside it."""
        import json

        from .store_status import describe

        where = describe(_state())
        if not as_json:
            _where(where)
        try:
            status = _ddb(lambda: _control().status())
        except Exception as exc:  # noqa: BLE001 - missing tables: say so, never a traceback
            click.echo(f"error: cannot read the migration state: {type(exc).__name__}: {exc}"[:500], err=True)
            sys.exit(1)
        if as_json:
            click.echo(json.dumps({**status, "where": where}, indent=2, default=str))
            return
        click.echo(f"phase {status['label']}: {status['name']} ({status['flags']}); source: {status['source']}"
                   + (", PINNED by SHOP_FLAGS_PINNED" if status["pinned"] else ""))
        if status["changed_at"]:
            click.echo(f"changed {_utc(status['changed_at'])} by {status['changed_by']}"
                       + (f": {status['reason']}" if status["reason"] else ""))
        if status.get("mysql_behind_since"):
            click.echo(f"MySQL is catching up since {_utc(status['mysql_behind_since'])}")
        click.echo("writes waiting to reach the other store: "
                   + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in status["pending"].items()))
        for mark, data in sorted(status["marks"].items()):
            click.echo(f"last {mark}: {_mark(data)}")
        _exposure_table(status["exposure"])
        _history(status.get("history") or [])
        for side in ("next", "previous"):
            if status.get(side):
                click.echo(f"to phase {status[side]['to']}:")
                for g in status[side]["gates"] or [{"ok": True, "name": "no gate", "detail": "always allowed"}]:
                    click.echo(f"  [{'ok' if g['ok'] else 'NO'}] {g['name']}: {g['detail']}")

    @phase_group.command("compare")
    @click.argument("entities", nargs=-1, required=True)
    @click.option("--percent", type=float, default=None, help="The share of requests whose reads are compared (0-100).")
    @click.option("--mode", type=click.Choice(["inline", "shadow"]), default=None,
                  help="inline: on the request's time, a mismatch may raise; shadow: after the answer, on a "
                       "bounded pool, reported only.")
    @click.option("--reason", default="", help="Why; kept in the audit trail.")
    @click.option("--who", default=None, help="Who is changing it (default: login@host).")
    def phase_compare(entities, percent, mode, reason, who):
        """How phase 3 compares the reads of ENTITIES (names, or `all`): how many, and how."""
        _outcome(_ddb(lambda: _control().expose(parse_names(entities), cli_user(who), compare_percent=percent,
                                                 compare_mode=mode, reason=reason)))

    @phase_group.command("rollout")
    @click.argument("percent", type=float)
    @click.argument("entities", nargs=-1, required=True)
    @click.option("--force", is_flag=True, help="Override refusing gates (recorded in the audit trail).")
    @click.option("--reason", default="", help="Why; kept in the audit trail.")
    @click.option("--who", default=None, help="Who is changing it (default: login@host).")
    def phase_rollout(percent, entities, force, reason, who):
        """In phase 3, let DynamoDB serve the reads of ENTITIES (names, or `all`) for PERCENT of
        readers (sticky per user); up is gated on the evidence at the current step, down never."""
        _outcome(_ddb(lambda: _control().expose(parse_names(entities), cli_user(who), rollout=percent, force=force,
                                                 reason=reason)))

    @phase_group.command("set")
    @click.argument("target", type=int)
    @click.option("--force", is_flag=True, help="Override refusing gates (recorded in the audit trail).")
    @click.option("--reason", default="", help="Why; kept in the audit trail.")
    @click.option("--who", default=None, help="Who is changing it (default: login@host).")
    def phase_set(target, force, reason, who):
        """Move the server to phase TARGET (1-5); every worker follows within a few seconds."""
        _outcome(_ddb(lambda: _control().set(target, cli_user(who), force=force, reason=reason, progress=_progress)))


def _history(entries, shown: int = 8) -> None:
    """The last changes and refusals, newest first (the guard's steps among them)."""
    if not entries:
        return
    click.echo("recent changes (newest first; the whole trail: phase status --json, or the flag page):")
    for e in entries[:shown]:
        move = f"{e.get('from')} -> {e.get('to')}" if e.get("from") != e.get("to") else f"in {e.get('to')}"
        reason = (e.get("reason") or "").replace("\n", " ")
        click.echo(f"  {_utc(e.get('at'))}  {e.get('outcome', ''):<12} {move:<8} by {e.get('who')}"
                   + (f": {reason[:110]}" if reason else ""))


def _outcome(result) -> None:
    """A phase or exposure change's gates, then what happened (exit 1 when refused)."""
    for g in result.gates:
        click.echo(f"  [{'ok' if g.ok else 'NO'}] {g.name}: {g.detail}")
    if not result.ok:
        click.echo(f"error: {result.message}", err=True)
        sys.exit(1)
    click.echo(result.message)


def _exposure_table(rows: list[dict]) -> None:
    """Per entity: how its reads are exposed, and what they showed since its step began."""
    def pct(v):
        return "-" if v is None else f"{v:.2%}"

    def ms(store):
        return "-" if not store["reads"] else f"{store['p50_ms']}/{store['p99_ms']} ms"
    click.echo("reads by entity (evidence since the entity's step began):")
    click.echo(f"  {'entity':9} {'compare':>8} {'mode':7} {'DynamoDB serves':>15} {'compared':>9} {'consistent':>10}"
               f" {'MySQL p50/p99':>15} {'DynamoDB p50/p99':>17} {'DDB errors':>10} {'dropped':>7}")
    for r in rows:
        ev = r["evidence"]
        click.echo(f"  {r['entity']:9} {r['compare_percent']:>7g}% {r['compare_mode']:7} {r['serves']:>14g}%"
                   f" {ev['compared']:>9} {pct(ev['consistency']):>10} {ms(ev['mysql']):>15}"
                   f" {ms(ev['dynamodb']):>17} {pct(ev['dynamodb']['error_rate']):>10} {ev['shadow_dropped']:>7}")


def register_categories(app) -> None:
    """The shop's own categories (no owner) are the operators': changed here, never by a seller."""
    import logging

    from observability.events import emit

    from .errors import ShopError

    log = logging.getLogger("shop.catalog")

    def run(action, what: str, category_id: int):
        try:
            result = _ddb(action)
        except ShopError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        emit(log, logging.WARNING, f"category {what} by an operator",
             {"event": "category", "action": what, "entity_id": str(category_id), "who": cli_user(None)})
        return result

    @app.cli.group("category")
    def category_group():
        """The category tree, as the shop's operators change it (through the routing layer)."""

    @category_group.command("rename")
    @click.argument("category_id", type=int)
    @click.argument("name")
    def rename(category_id, name):
        """Rename CATEGORY_ID to NAME (unique once folded, as sellers' are)."""
        c = run(lambda: _state().services.categories.update(category_id, {"name": name}), "renamed", category_id)
        click.echo(f"category {c.id} is now {c.name!r}")

    @category_group.command("delete")
    @click.argument("category_id", type=int)
    def delete(category_id):
        """Delete CATEGORY_ID (only without products or subcategories)."""
        run(lambda: _state().services.categories.delete(category_id), "deleted", category_id)
        click.echo(f"category {category_id} deleted")

    @category_group.command("owner")
    @click.argument("category_id", type=int)
    @click.argument("username", required=False)
    def owner(category_id, username):
        """Hand CATEGORY_ID to seller USERNAME, or with no USERNAME back to the shop."""
        owner_id = None
        if username:
            user = _state().repos.users.get_by_username(username)
            if user is None or not user.is_seller:
                click.echo(f"error: {username!r} is not a seller", err=True)
                sys.exit(1)
            owner_id = user.id
        c = run(lambda: _state().services.categories.set_owner(category_id, owner_id), "handed over", category_id)
        click.echo(f"category {c.id} {c.name!r} belongs to " + (username or "the shop") + " now")


def _utc(text) -> str:
    from .migration.state import parse, shown
    return shown(parse(text)) if text else ""


def _mark(data: dict) -> str:
    """A backfill's or verify's mark in words: what it found, divergence and writes since apart."""
    parts = [f"finished {_utc(data.get('completed_at'))}" if data.get("completed_at") else "unfinished"]
    if "divergent" in data:
        parts.append(f"{data.get('compared')} compared, {data['divergent']} divergent")
        if data.get("written_since"):
            parts.append(f"{data['written_since']} written since (journaled for the other store, not a divergence)")
    if "copied" in data:
        parts.append(f"{data['copied']} copied, {data.get('unchanged', 0)} unchanged")
    if data.get("left_alone"):
        parts.append(f"{data['left_alone']} left alone")
    parts.append(f"{data.get('failed', 0)} failed")
    return ", ".join(parts)


# What a difference's kind means, in words (shop.aspects.compare.diff's kinds).
_KINDS = {"changed": "values differ", "type": "types differ", "missing": "present only in MySQL",
          "extra": "present only in DynamoDB", "missing_item": "present only in MySQL",
          "extra_item": "present only in DynamoDB"}


def _divergence(names, kinds) -> str:
    """'price, name: values differ' or 'the whole record: present only in MySQL'."""
    where = ", ".join("the whole record" if n == "(value)" else n for n in names)
    return f"{where}: {'; '.join(dict.fromkeys(_KINDS.get(k, k) for k in kinds))}"


def _where(where: dict) -> None:
    """Which stores this command reads, first, and every surprise about them, loudly."""
    m, d = where["mysql"], where["dynamodb"]
    click.echo(f"reading MySQL database {m['database']} at {m['address']} (user {m['user']})"
               + (": " + ", ".join(f"{n} {t}" for t, n in m["rows"].items()) if m.get("rows") else ""))
    click.echo(f"reading DynamoDB tables {', '.join(d['tables'])} at {d['endpoint']}")
    for warning in where["warnings"]:
        click.echo(f"!! WARNING: {warning}")


def _ddb(action):
    from .repositories.dynamodb.errors import DynamoDBError

    try:
        return action()
    except DynamoDBError as exc:
        click.echo(f"error: {exc.message} ({exc.code})", err=True)
        sys.exit(1)
    except Exception as exc:  # botocore connection errors outside Dynamo.call
        if type(exc).__module__.startswith("botocore"):
            click.echo(f"error: DynamoDB is unreachable: {exc}", err=True)
            sys.exit(1)
        raise

