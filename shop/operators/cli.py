"""`flask --app shop operator add|rotate|remove|list|unlock`: the accounts in SHOP_OPERATORS_FILE.

Secrets are prompted for (never echoed, asked twice) or read from standard input with
`--password-stdin` (scripts); only their bcrypt hash is written. Running servers pick a change up
at their next operator request. Each change is logged with the operating-system user who made it.
"""
from __future__ import annotations

import logging
import sys

import click
from flask import current_app

from observability.events import emit

from .accounts import LEGACY_NAME, NAME_RE, Editing, hash_secret, read, weak_secret
from .identity import cli_user

log = logging.getLogger("shop.operators")


def _path() -> str:
    path = current_app.extensions["shop"].settings.operators_file
    if not path:
        click.echo("error: set SHOP_OPERATORS_FILE to the file the servers read operator accounts from "
                   "(for example /etc/shop/operators), then run this again", err=True)
        sys.exit(1)
    return path


def _name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        click.echo(f"error: {name!r} cannot be an operator's name: a lowercase letter, then up to 31 of a-z, "
                   "0-9, '.', '_', '-'", err=True)
        sys.exit(1)
    return name


def _secret(name: str, from_stdin: bool) -> str:
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = click.prompt(f"Secret for {name}", hide_input=True, confirmation_prompt=True)
    reason = weak_secret(secret, name)
    if reason:
        click.echo(f"error: the secret {reason}; nothing changed. Use at least 16 characters, for example four "
                   "random words, or: python3 -c 'import secrets; print(secrets.token_urlsafe(18))'", err=True)
        sys.exit(1)
    return secret


def _record(action: str, name: str) -> None:
    emit(log, logging.WARNING, f"operator account {action}", {"event": "operator", "account": name,
                                                            "who": cli_user(None), "path": _path()})


def _set_secret(name: str, from_stdin: bool, new: bool) -> None:
    """`add` (`new`: the account must not exist yet) and `rotate` (it must)."""
    name, path = _name(name), _path()
    secret = _secret(name, from_stdin)
    with Editing(path) as accounts:
        if (name in accounts) == new:
            click.echo(f"error: {name} already has an account (`operator rotate {name}` changes its secret)" if new
                       else f"error: {name} has no account (`operator add {name}`)", err=True)
            sys.exit(1)
        accounts[name] = hash_secret(secret, current_app.extensions["shop"].settings.bcrypt_rounds)
    _record("added" if new else "rotated", name)
    click.echo(f"{name} added to {path}" if new else f"{name}'s secret changed in {path}")


def register(app) -> None:
    @app.cli.group("operator")
    def operator_group():
        """Operator accounts of the flag page and /metrics (SHOP_OPERATORS_FILE)."""

    password_stdin = click.option("--password-stdin", is_flag=True,
                                  help="Read the secret from the first line of standard input.")

    @operator_group.command("add")
    @click.argument("name")
    @password_stdin
    def add(name, password_stdin):
        """Give NAME an account, with a secret of its own."""
        _set_secret(name, password_stdin, new=True)

    @operator_group.command("rotate")
    @click.argument("name")
    @password_stdin
    def rotate(name, password_stdin):
        """Give NAME a new secret; the old one stops working at once."""
        _set_secret(name, password_stdin, new=False)

    @operator_group.command("remove")
    @click.argument("name")
    def remove(name):
        """Remove NAME's account: it can no longer sign in."""
        name, path = _name(name), _path()
        with Editing(path) as accounts:
            if accounts.pop(name, None) is None:
                click.echo(f"error: {name} has no account", err=True)
                sys.exit(1)
        _record("removed", name)
        click.echo(f"{name} removed from {path}")

    @operator_group.command("list")
    def list_accounts():
        """The accounts' names (never their hashes)."""
        settings = current_app.extensions["shop"].settings
        names = sorted(read(_path())) if settings.operators_file or not settings.flags_page_password else []
        for name in names:
            click.echo(name)
        if settings.flags_page_password and LEGACY_NAME not in names:
            click.echo(f"{LEGACY_NAME} (SHOP_FLAGS_PAGE_PASSWORD, deprecated)")

    @operator_group.command("unlock")
    @click.argument("name", required=False)
    @click.option("--address", help="Also end the lock of this client address.")
    def unlock(name, address):
        """End the lockout of account NAME (and of an --address) before its window ends."""
        lockout = current_app.extensions["operator_lockout"]
        if name:
            lockout.clear("account", _name(name))
        if address:
            lockout.clear("address", address)
        if not (name or address):
            click.echo("error: name an account, an --address, or both", err=True)
            sys.exit(1)
        click.echo("unlocked")
