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
