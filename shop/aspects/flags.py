"""The four routing flags as an immutable, validated value, and the flags in force.

Two context variables: `use_flags(...)` sets the flags for a block of trusted code (the CLI,
tests), all four of them; a browser's signed cookie sets `browser` flags, of which only the
reads count: where a request writes is always the server's phase, so no visitor's choice can
write what the server would not (docs/enable-flags.md). Otherwise the server's phase applies.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass

NAMES = ("READ_MYSQL", "READ_DDB", "WRITE_MYSQL", "WRITE_DDB")


class FlagError(ValueError):
    """An impossible combination or an unknown flag name."""


@dataclass(frozen=True)
class Flags:
    read_mysql: bool = True
    read_ddb: bool = False
    write_mysql: bool = True
    write_ddb: bool = False

    def __post_init__(self):
        problems = []
        if not (self.read_mysql or self.read_ddb):
            problems.append("no read source (turn on READ_MYSQL or READ_DDB)")
        if not (self.write_mysql or self.write_ddb):
            problems.append("no write target (turn on WRITE_MYSQL or WRITE_DDB)")
        if problems:
            raise FlagError("impossible flags: " + "; ".join(problems))

    @classmethod
    def parse(cls, text: str | None) -> "Flags":
        """'READ_MYSQL,WRITE_MYSQL' -> Flags; names of the flags that are on."""
        names = [n.strip().upper() for n in (text or "").split(",") if n.strip()]
        unknown = [n for n in names if n not in NAMES]
        if unknown:
            raise FlagError(f"unknown flag(s) {', '.join(unknown)}; known: {', '.join(NAMES)}")
        return cls(*(n in names for n in NAMES))

    @classmethod
    def from_names(cls, names) -> "Flags":
        return cls.parse(",".join(names))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, on in zip(NAMES, self.as_tuple()) if on)

    def as_tuple(self) -> tuple[bool, bool, bool, bool]:
        return (self.read_mysql, self.read_ddb, self.write_mysql, self.write_ddb)

    def __str__(self) -> str:
        return ",".join(self.names)

    @property
    def dual_read(self) -> bool:
        return self.read_mysql and self.read_ddb

    @property
    def dual_write(self) -> bool:
        return self.write_mysql and self.write_ddb

    @property
    def authority(self) -> str:
        """The store whose answer a read returns: MySQL while MySQL is written."""
        if self.read_mysql and (self.write_mysql or not self.read_ddb):
            return "mysql"
        return "dynamodb"

    @property
    def preset(self) -> "Preset | None":
        return next((p for p in PRESETS if p.flags == self), None)

    @property
    def scenario(self) -> str:
        p = self.preset
        return p.name if p else "custom"

    @property
    def risks(self) -> list[str]:
        """What a custom mix puts at stake; empty for the five presets."""
        if self.preset:
            return []
        risks = []
        if self.read_mysql and not self.write_mysql:
            risks.append("reads MySQL, which is not written: MySQL goes stale and reads miss new data")
        if self.read_ddb and not self.write_ddb:
            risks.append("reads DynamoDB, which is not written: DynamoDB goes stale and reads miss new data")
        if self.write_ddb and not self.write_mysql and self.read_mysql:
            risks.append("writes only DynamoDB while reading MySQL: users do not see their own changes")
        if self.write_mysql and not self.write_ddb and self.read_ddb and not self.read_mysql:
            risks.append("writes only MySQL while reading DynamoDB: users do not see their own changes")
        return risks or ["not one of the five tested phases"]


@dataclass(frozen=True)
class Preset:
    number: int
    key: str
    name: str
    flags: Flags
    description: str


PRESETS = (
    Preset(1, "mysql-only", "MySQL only", Flags(True, False, True, False),
           "Reads and writes go to MySQL: the application before the migration."),
    Preset(2, "dual-write", "Dual write, read MySQL", Flags(True, False, True, True),
           "Writes go to MySQL, then DynamoDB with MySQL's ids; reads come from MySQL."),
    Preset(3, "dual-read", "Dual write, dual read", Flags(True, True, True, True),
           "Writes go to both; reads read both, compare them and return MySQL's answer."),
    Preset(4, "read-ddb", "Dual write, read DynamoDB", Flags(False, True, True, True),
           "Writes go to both; reads come from DynamoDB. MySQL is still written, so rollback is a switch."),
    Preset(5, "ddb-only", "DynamoDB only", Flags(False, True, False, True),
           "Reads and writes go to DynamoDB; new ids come from DynamoDB's counters."),
)
PRESETS_BY_KEY = {p.key: p for p in PRESETS}
MYSQL_ONLY = PRESETS[0].flags

_current: contextvars.ContextVar[Flags | None] = contextvars.ContextVar("shop_flags", default=None)
_browser: contextvars.ContextVar[Flags | None] = contextvars.ContextVar("shop_browser_flags", default=None)


def explicit() -> Flags | None:
    """The flags set on this context, if any (None means: the server default applies)."""
    return _current.get()


def browser() -> Flags | None:
    """The flags this request's browser asked for (only their reads are honoured)."""
    return _browser.get()


def set_browser(flags: Flags | None):
    return _browser.set(flags)


def reset_browser(token) -> None:
    _browser.reset(token)


def combine(server: Flags, wanted: Flags | None) -> Flags:
    """A browser's reads with the server's writes."""
    if wanted is None:
        return server
    return Flags(wanted.read_mysql, wanted.read_ddb, server.write_mysql, server.write_ddb)


@contextmanager
def use_flags(flags: Flags | str):
    token = _current.set(Flags.parse(flags) if isinstance(flags, str) else flags)
    try:
        yield
    finally:
        _current.reset(token)
