"""Command-line tasks: `flask --app shop init-db | seed`."""
from __future__ import annotations

import sys

import click
from flask import current_app

from .errors import StoreUnavailableError


def _state():
    return current_app.extensions["shop"]


def register(app) -> None:
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
    @click.option("--gap", default=1000, show_default=True, help="Headroom above MySQL's largest id.")
    def ddb_seed_counters(gap):
        """Raise DynamoDB's ID counters above MySQL's largest ids (never lowers them)."""
        from .repositories.dynamodb import IdAllocator

        state = _state()
        ids = IdAllocator(state.dynamo)
        sources = {"user": "users", "category": "categories", "product": "products", "cart": "shopping_carts",
                   "order": "orders", "order_item": "order_items"}
        with state.db.cursor() as cur:
            for entity, table in sources.items():
                cur.execute(f"SELECT COALESCE(MAX(id), 0) AS m FROM {table}")
                floor = cur.fetchone()["m"] + gap
                click.echo(f"{entity}: counter at {_ddb(lambda: ids.seed(entity, floor))}"
                           f" (MySQL max {floor - gap})")


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

