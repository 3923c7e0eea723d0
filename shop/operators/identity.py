"""Who acted, as the audit trail records it: the flag page records the signed-in operator
account; a command records the operating-system user who ran it."""
from __future__ import annotations

import getpass
import socket


def cli_user(given: str | None = None) -> str:
    """`login@host (cli)`, or what `--who` gave."""
    if given:
        return given
    try:
        return f"{getpass.getuser()}@{socket.gethostname()} (cli)"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli"
