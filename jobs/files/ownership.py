"""Which rows belong to a user, found from the models' metadata rather than from a list.

A row belongs to user ``u`` when it is ``u``'s own ``users`` row, when its table has a
``user_id`` column equal to ``u``, or — for a table without ``user_id`` — when a foreign key
leads to a row of ``u`` (followed through as many tables as it takes). A table added to
``jobs.db.Base.metadata`` with a ``user_id`` column, or hanging off a user-owned table, is
backed up and restored without any change here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, MetaData, Select, Table, select

__all__ = ["USERS_TABLE", "OwnedTable", "owned_tables"]

USERS_TABLE = "users"
OWNER_COLUMN = "user_id"


@dataclass(frozen=True)
class OwnedTable:
    """A table holding user-owned rows, and how to select one user's rows of it."""

    table: Table
    path: tuple[tuple[str, str, str], ...]
    """Foreign keys leading to the owner: (column, referred table's key, referred column) each."""

    @property
    def name(self) -> str:
        """The table's name."""
        return self.table.name

    def owned_by(self, user_id: int) -> ColumnElement[bool]:
        """The WHERE clause selecting ``user_id``'s rows of this table."""
        return _clause(self.table, self.path, user_id)

    def select_rows(self, user_id: int) -> Select[tuple[object, ...]]:
        """All of ``user_id``'s rows, in primary-key order."""
        return (
            select(self.table)
            .where(self.owned_by(user_id))
            .order_by(*self.table.primary_key.columns)
        )


def _clause(
    table: Table, path: tuple[tuple[str, str, str], ...], user_id: int
) -> ColumnElement[bool]:
    if not path:
        if table.name == USERS_TABLE:
            return table.c.id == user_id
        return table.c[OWNER_COLUMN] == user_id
    (column, referred_name, referred_column), rest = path[0], path[1:]
    referred = table.metadata.tables[referred_name]
    inner = select(referred.c[referred_column]).where(_clause(referred, rest, user_id))
    return table.c[column].in_(inner)


def _path_to_owner(
    table: Table, metadata: MetaData, seen: frozenset[str]
) -> tuple[tuple[str, str, str], ...] | None:
    if table.name == USERS_TABLE or OWNER_COLUMN in table.c:
        return ()
    for constraint in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
        referred = constraint.referred_table
        if referred.name in seen or len(constraint.elements) != 1:
            continue
        rest = _path_to_owner(referred, metadata, seen | {table.name})
        if rest is not None:
            [element] = constraint.elements
            return ((element.parent.name, referred.key, element.column.name), *rest)
    return None


def owned_tables(
    metadata: MetaData, include: Callable[[Table], bool] | None = None
) -> list[OwnedTable]:
    """Every table with user-owned rows, parents before children (foreign-key order).

    ``include`` leaves out tables the jobs do not own (the backend's users relations).
    """
    found = []
    for table in metadata.sorted_tables:
        if not table.primary_key.columns or (include is not None and not include(table)):
            continue
        path = _path_to_owner(table, metadata, frozenset())
        if path is not None:
            found.append(OwnedTable(table, path))
    return found
