"""Command-line tasks: `flask --app shop init-db | seed`."""
from __future__ import annotations

import sys

import click
from flask import current_app

from .errors import StoreUnavailableError


def _state():
    return current_app.extensions["shop"]


def register(app) -> None:
    register_migration(app)

    @app.cli.command("init-db")
    def init_db():
        """Create the MySQL tables (idempotent)."""
        state = _state()
        try:
            state.db.create_schema()
            state.runtime.repair_log.ensure_table()
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
    @click.option("--gap", default=1000, show_default=True, help="Headroom above MySQL's largest id.")
    def ddb_seed_counters(gap):
        """Raise DynamoDB's ID counters above MySQL's largest ids (never lowers them)."""
        from .aspects.sync import seed_counters_from_mysql

        state = _state()
        for entity, (top, counter) in _ddb(lambda: seed_counters_from_mysql(state.db, state.dynamo, gap)).items():
            click.echo(f"{entity}: counter at {counter} (MySQL max {top})")


def _sync():
    from . import Repositories
    from .aspects.sync import Sync

    state = _state()
    return Sync(state.db, Repositories.mysql(state.db), Repositories.dynamodb(state.dynamo), state.dynamo)


def register_migration(app) -> None:
    @app.cli.command("repair")
    @click.option("--divergent", is_flag=True,
                  help="Also repair every entity verify finds divergent (writes lost without an entry, "
                       "e.g. a worker killed between the MySQL commit and the DynamoDB write).")
    def repair_cmd(divergent):
        """Copy every entity with a pending repair entry from MySQL into DynamoDB."""
        from .aspects.sync import ENTITIES

        state = _state()
        entries = state.runtime.repair_log.pending()
        targets: dict[tuple[str, str], int] = {}
        for e in entries:
            key = (e["entity"], e["entity_id"])
            targets[key] = max(targets.get(key, 0), e["id"])
        sync = _sync()
        if divergent:
            found = _ddb(sync.targets)
            with click.progressbar(found, label=f"looking for divergence in {len(found)} entities") as bar:
                for entity, entity_id in bar:
                    if (entity, str(entity_id)) not in targets and _ddb(lambda: sync.compare(entity, entity_id)):
                        targets[(entity, str(entity_id))] = 0
        ordered = sorted(targets, key=lambda t: (ENTITIES.index(t[0]), int(t[1])))
        if not ordered:
            click.echo("nothing to repair: no pending entries" + (" and no divergence" if divergent else ""))
            return
        def close_entries(entity, entity_id):
            if targets[(entity, entity_id)]:
                state.runtime.repair_log.mark_repaired(entity, entity_id, targets[(entity, entity_id)])

        failed = _copy_from_mysql(sync, ordered, "repairing", close_entries)
        click.echo(f"repaired {len(ordered) - len(failed)} of {len(ordered)} entities"
                   f" ({len(entries)} entries); {len(failed)} failed")
        _exit_on_failures(failed)

    @app.cli.command("backfill")
    def backfill_cmd():
        """Copy every user, category, product, cart and order from MySQL into DynamoDB
        (idempotent: it writes MySQL's current state; run it before turning on WRITE_DDB
        reads, and again after, until verify is clean)."""
        sync = _sync()
        targets = _ddb(sync.targets)
        failed = _copy_from_mysql(sync, targets, "backfilling")
        click.echo(f"backfilled {len(targets) - len(failed)} of {len(targets)} entities; {len(failed)} failed")
        _exit_on_failures(failed)

    @app.cli.command("verify")
    @click.option("--show", default=20, show_default=True, help="How many divergent entities to list.")
    def verify_cmd(show):
        """Compare MySQL and DynamoDB entity by entity; exit 1 when they diverge."""
        from collections import Counter

        from .aspects.compare import attribute_names

        sync = _sync()
        targets = _ddb(sync.targets)
        compared, divergent = Counter(), []
        with click.progressbar(targets, label=f"verifying {len(targets)} entities") as bar:
            for entity, entity_id in bar:
                compared[entity] += 1
                differences = _ddb(lambda: sync.compare(entity, entity_id))
                if differences:
                    divergent.append((entity, entity_id, attribute_names(differences),
                                      sorted({d.kind for d in differences})))
        bad = Counter(e for e, _, _, _ in divergent)
        for entity in ("user", "category", "product", "cart", "order"):
            click.echo(f"{entity:9} compared {compared[entity]:6}  divergent {bad[entity]:6}")
        for entity, entity_id, names, kinds in divergent[:show]:
            click.echo(f"  {entity} {entity_id}: {', '.join(names)} ({', '.join(kinds)})")
        click.echo(f"divergent: {len(divergent)} of {len(targets)}")
        if divergent:
            sys.exit(1)


def _copy_from_mysql(sync, targets, verb: str, done=lambda entity, entity_id: None) -> list:
    """Copy each (entity, id) from MySQL's state into DynamoDB with a progress bar; a failure
    is logged and the next target tried. Returns the failures."""
    import logging

    log = logging.getLogger("shop.aspects")
    failed = []
    with click.progressbar(targets, label=f"{verb} {len(targets)} entities") as bar:
        for entity, entity_id in bar:
            try:
                sync.repair(entity, entity_id)
            except Exception as exc:
                failed.append((entity, entity_id, exc))
                log.error("repair failed", extra={"event": "repair", "action": "failed", "entity": entity,
                                                  "entity_id": entity_id, "error_type": type(exc).__name__})
                continue
            done(entity, entity_id)
            log.info("repaired", extra={"event": "repair", "action": "repaired", "entity": entity,
                                        "entity_id": entity_id})
    return failed


def _exit_on_failures(failed) -> None:
    for entity, entity_id, exc in failed[:20]:
        click.echo(f"  failed: {entity} {entity_id}: {type(exc).__name__}: {exc}", err=True)
    if failed:
        sys.exit(1)


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

