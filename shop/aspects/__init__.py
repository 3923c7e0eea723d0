"""Flag-routed reads and writes between MySQL and DynamoDB, woven into the MySQL
repositories with wrapt; the repository code itself knows nothing of it.

    install()                     wrap the methods in the routing table (idempotent)
    uninstall()                   restore the originals
    attach(mysql, dynamodb, rt)   give an app's MySQL repositories their counterparts
    use_flags(Flags | "READ_MYSQL,...")   route a block by other flags
"""
from .errors import DualReadMismatch, SecondaryWriteFailed
from .flags import MYSQL_ONLY, PRESETS, PRESETS_BY_KEY, FlagError, Flags, use_flags
from .router import Runtime
from .weave import bind, install, installed, uninstall, unbind

__all__ = ["DualReadMismatch", "FlagError", "Flags", "MYSQL_ONLY", "PRESETS", "PRESETS_BY_KEY", "Runtime",
           "SecondaryWriteFailed", "attach", "bind", "install", "installed", "uninstall", "unbind", "use_flags"]


def attach(mysql_repos, ddb_repos, runtime) -> None:
    """Bind each MySQL repository of an app (shop.repositories.Repositories) to its DynamoDB
    counterpart and the app's runtime."""
    for name, repo in mysql_repos:
        bind(repo, getattr(ddb_repos, name), runtime)
