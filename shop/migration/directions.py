"""The two ways a copy goes, as objects: each says which store is the source and which the
target, which hook of an entity copies that way, and (shop/migration/journal.py) where the
writes still waiting to go that way are recorded: in the store that has them.

A direction is also its name (a str), as journal entries, reports and logs spell it."""
from __future__ import annotations


class Direction(str):
    source: str
    target: str

    def __new__(cls, name: str, source: str, target: str) -> "Direction":
        self = super().__new__(cls, name)
        self.source, self.target = source, target
        return self

    def copy(self, copier, entity, entity_id: int, deleted: bool = False) -> str:
        """Make the target hold what the source holds for one entity (Entity.to_dynamodb or
        Entity.to_mysql); returns the outcome."""
        return getattr(entity, str(self))(copier, int(entity_id), deleted)

    @property
    def words(self) -> str:
        return str(self).replace("_", " ")


TO_DYNAMODB = Direction("to_dynamodb", source="mysql", target="dynamodb")
TO_MYSQL = Direction("to_mysql", source="dynamodb", target="mysql")
DIRECTIONS = (TO_DYNAMODB, TO_MYSQL)


def towards(store: str) -> Direction:
    """The direction whose target is `store` ("mysql" or "dynamodb")."""
    return next(d for d in DIRECTIONS if d.target == store)


def of(name: str) -> Direction:
    """The direction a name (a journal entry's, an argument's) spells; ValueError for another."""
    for d in DIRECTIONS:
        if d == name:
            return d
    raise ValueError(f"no direction {name!r}: {', '.join(DIRECTIONS)}")
