"""Inserts that meet existing rows, on PostgreSQL and SQLite alike.

Inserts that skip duplicates (idempotent queueing), bulk upserts by a natural key (sync), and
rows written back with their own primary keys (restores). PostgreSQL and SQLite share the
``INSERT … ON CONFLICT`` syntax but not SQLAlchemy's constructs, so the dialect picks the
construct here and callers stay dialect-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Table, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert

from jobs.db.base import Base
from jobs.db.layout import layout_of, qualified_name

__all__ = [
    "insert_ignoring_conflicts",
    "reset_identity_sequence",
    "upsert_by_primary_key",
    "upsert_rows",
]


def insert_ignoring_conflicts(
    dialect_name: str, model: type[Base], rows: Sequence[dict[str, Any]]
) -> Insert:
    """An INSERT of ``rows`` that silently skips rows violating a unique constraint."""
    insert = (pg_insert if dialect_name == "postgresql" else sqlite_insert)(model)
    return insert.values(list(rows)).on_conflict_do_nothing()


def upsert_rows(
    dialect_name: str,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    *,
    conflict_columns: Sequence[str],
) -> Insert:
    """The upsert for ``rows``: execute it with the rows, ``session.execute(stmt, rows)``.

    SQLAlchemy sends the rows as one multi-row ``INSERT … VALUES (…), (…) ON CONFLICT DO
    UPDATE`` (its "insertmanyvalues" mode, up to 1000 rows per statement) from a statement
    compiled once. Every row must have the same keys; columns in ``conflict_columns`` and
    ``id`` are never updated.
    """
    if not rows:
        raise ValueError("upsert_rows needs at least one row")
    insert = (pg_insert if dialect_name == "postgresql" else sqlite_insert)(model)
    keep = {*conflict_columns, "id"}
    updates = {name: insert.excluded[name] for name in rows[0] if name not in keep}
    # RETURNING makes SQLAlchemy render the rows into one multi-row statement on every driver
    return insert.on_conflict_do_update(
        index_elements=list(conflict_columns), set_=updates
    ).returning(insert.table.c.id)


def upsert_by_primary_key(dialect_name: str, table: Table) -> Insert:
    """An INSERT of ``table`` rows that overwrites the row with the same primary key.

    Execute it with a list of row dictionaries (executemany); running it twice leaves the
    same rows.
    """
    insert = pg_insert(table) if dialect_name == "postgresql" else sqlite_insert(table)
    keys = [column.name for column in table.primary_key.columns]
    updates = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
    if not updates:
        return insert.on_conflict_do_nothing(index_elements=keys)
    return insert.on_conflict_do_update(index_elements=keys, set_=updates)


async def reset_identity_sequence(connection: AsyncConnection, table: Table) -> None:
    """After inserting explicit ids, move ``table``'s id sequence past the largest id.

    PostgreSQL only (SQLite's rowid follows the largest id by itself); tables without a
    single integer primary key with a sequence are left alone.
    """
    if connection.dialect.name != "postgresql":
        return
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or not isinstance(keys[0].type, Integer):
        return
    key = keys[0]
    sequence = await connection.scalar(
        text("SELECT pg_get_serial_sequence(:table, :column)"),
        {"table": qualified_name(layout_of(connection), table), "column": key.name},
    )
    if sequence is None:
        return
    largest = await connection.scalar(select(func.max(key)))
    await connection.execute(
        text("SELECT setval(CAST(:sequence AS regclass), :value, :called)"),
        {"sequence": sequence, "value": largest or 1, "called": largest is not None},
    )
