"""What the migration needs of an entity: each module of this package declares one, by these
attributes and hooks. The generic machinery (copies.py, pages.py, segments.py, jobs.py) calls the
hooks; it never tests an entity's name."""
from __future__ import annotations

from ..copying import Plan, differences


class UnknownEntity(KeyError):
    """A name no module of shop/migration/entities/ declares: an error, never a fall-through."""


class Entity:
    name: str                   # as the journal, reports and the CLI name it
    repository: str             # the repository class whose reads and writes concern it
    repos_attr: str             # its attribute on Repositories (shop/repositories/__init__.py)
    key: str                    # that repository's parameter naming one entity
    mysql_table: str            # the MySQL table a keyset walk pages through
    keyset_column: str = "id"   # the column of that table holding the entity's id
    ddb_table: str              # logical DynamoDB table (Dynamo.table(name))
    ddb_kind: str               # the item's `entity` attribute
    ddb_id: str = "id"          # the item attribute holding the entity's id
    counters: tuple[tuple[str, str], ...] = ()  # (DynamoDB id counter, MySQL table whose AUTO_INCREMENT pairs)
    parents: tuple[str, ...] = ()  # entities it references: copied first
    blind_first_copy: bool = False  # a first copy may write it without reading DynamoDB (no guard decides)
    several_items: bool = False  # DynamoDB holds it as several items of one partition (a cart's lines)
    none = None                 # what MySQL's repository returns when it holds none (a cart: [])

    def __repr__(self) -> str:
        return f"<entity {self.name}>"

    # --- reading ----------------------------------------------------------------------------

    def read(self, repos, entity_id):
        """One entity through a family of repositories (MySQL's or DynamoDB's), as verify and a
        dual read compare it."""
        raise NotImplementedError

    def load_mysql(self, db, repos, ids: list[int]) -> dict[int, object]:
        """{id: what MySQL's repository would return} for the ids MySQL holds: one query."""
        raise NotImplementedError

    def load_dynamodb(self, dynamo, repos, ids: list[int]) -> dict[int, object]:
        """{id: what DynamoDB's repository would return} for the ids DynamoDB holds: one batch."""
        raise NotImplementedError

    # --- copying one -------------------------------------------------------------------------

    def to_dynamodb(self, copier, entity_id: int, deleted: bool) -> str:
        """Make DynamoDB hold what MySQL holds for one entity; returns the outcome."""
        raise NotImplementedError

    def to_mysql(self, copier, entity_id: int, deleted: bool) -> str:
        """Make MySQL hold what DynamoDB holds for one entity, ids kept; returns the outcome."""
        raise NotImplementedError

    # --- copying a page ----------------------------------------------------------------------

    def plan_page(self, writer, source: dict, current: dict, blind: bool = False) -> Plan:
        """The writes that copy a page to DynamoDB: {id: MySQL's value} against {id: DynamoDB's}."""
        pairs = {i: (v, current.get(i)) for i, v in source.items() if differences(v, current.get(i))}
        plan = self.plan_copies(writer, pairs) if pairs else Plan()
        plan.unchanged = [i for i in source if i not in pairs]
        return plan

    def plan_copies(self, writer, pairs: dict) -> Plan:
        """The differing ones of a page: by default one at a time (few, or a query each anyway)."""
        return Plan(jobs=[lambda: writer.one_by_one(self.name, list(pairs))])

    # The reverse copy of a page in one multi-row upsert, or None: one at a time.
    write_page_to_mysql = None
