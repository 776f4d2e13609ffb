"""Bulk upserts: one ``INSERT … ON CONFLICT DO UPDATE`` statement for many rows.

PostgreSQL and SQLite share the syntax but not SQLAlchemy's constructs, so the dialect picks
the construct here and callers stay dialect-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert

from jobs.db.base import Base

__all__ = ["upsert_rows"]


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
