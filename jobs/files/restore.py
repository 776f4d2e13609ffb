"""Restoring one user's rows from a backup archive: verify everything, then write in one go.

The archive is read twice. The first pass checks that it lies in its user's backup directory,
the gzip stream, the SHA-256 and the row counts against the manifest, the schema revision
against the database, and that every row decodes into its table's columns and belongs to the
archive's user — before anything is written. The second pass upserts the rows by primary key,
parents before children, in one transaction, refusing ids and parent rows of other users
(:mod:`jobs.files.trust`); it checks the checksum again and rolls back if the file changed in
between. Restoring the same archive twice leaves the same rows.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.db.base import Base
from jobs.db.layout import layout_of
from jobs.db.migrate import current_revision
from jobs.db.upsert import reset_identity_sequence, upsert_by_primary_key
from jobs.files.archive import BackupError, read_archive
from jobs.files.ownership import OWNER_COLUMN, USERS_TABLE, owned_tables
from jobs.files.trust import refuse_foreign_ids, refuse_foreign_parents, refuse_misplaced_archive
from jobs.files.values import RowDecoder

__all__ = ["RestoreReport", "restore_backup", "verify_backup"]

BATCH_SIZE = 1000


@dataclass
class RestoreReport:
    """What a verified (and possibly restored) archive holds."""

    path: Path
    user_id: int
    schema_revision: str | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows in the archive."""
        return sum(self.counts.values())


def _decoders() -> dict[str, RowDecoder]:
    return {owned.name: RowDecoder(owned.table) for owned in owned_tables(Base.metadata)}


def _decode(
    path: Path, document: dict[str, Any], decoders: dict[str, RowDecoder], user_id: int
) -> tuple[str, dict[str, Any]]:
    table = str(document.get("table"))
    decoder = decoders.get(table)
    if decoder is None:
        raise BackupError(f"{path}: table {table!r} is not a user-owned table here")
    try:
        row = decoder.decode(document["row"])
    except (ValueError, TypeError, KeyError) as error:
        raise BackupError(f"{path}: a row of {table} does not fit the table: {error}") from None
    owner = row.get("id") if table == USERS_TABLE else row.get(OWNER_COLUMN, user_id)
    if owner != user_id:
        raise BackupError(f"{path}: a row of {table} belongs to another user")
    return table, row


def _decoded_rows(path: Path, user_id: int) -> Iterator[tuple[str, dict[str, Any]]]:
    decoders = _decoders()
    for document in read_archive(path):
        if document["kind"] == "row":
            yield _decode(path, document, decoders, user_id)


def _verify(path: Path) -> RestoreReport:
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file")
    decoders = _decoders()
    report: RestoreReport | None = None
    problem: BackupError | None = None
    for document in read_archive(path):
        if document["kind"] == "header":
            try:
                user_id = int(document["user_id"])
            except (KeyError, TypeError, ValueError):
                raise BackupError(f"{path}: the header names no user") from None
            refuse_misplaced_archive(path, user_id)
            report = RestoreReport(path, user_id, document.get("schema_revision"))
        elif document["kind"] == "row" and report is not None:
            # a damaged stream may decode into odd rows before gzip's CRC check at the end
            # catches it: report the damage, not the odd row
            try:
                table, _ = _decode(path, document, decoders, report.user_id)
            except BackupError as error:
                problem = problem or error
                continue
            report.counts[table] = report.counts.get(table, 0) + 1
    if problem is not None:
        raise problem
    if report is None:
        raise BackupError(f"{path} has no header")
    return report


async def verify_backup(path: Path) -> RestoreReport:
    """Check an archive completely without touching any database; BackupError if it is bad."""
    return await asyncio.to_thread(_verify, path)


def _next_batch(rows: Iterator[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return list(itertools.islice(rows, BATCH_SIZE))


async def restore_backup(engine: AsyncEngine, path: Path) -> RestoreReport:
    """Verify ``path``, then upsert its rows in one transaction; BackupError changes nothing."""
    report = await verify_backup(path)
    revision = await current_revision(engine)
    if revision != report.schema_revision:
        raise BackupError(
            f"{path} was made at schema revision {report.schema_revision}, but the database "
            f"is at {revision or 'none'}: migrate it to {report.schema_revision} first "
            "(`python -m jobs migrate`)"
        )
    owned = {
        table.name: table
        for table in owned_tables(Base.metadata, include=layout_of(engine).is_own_table)
    }
    if foreign := sorted(set(report.counts) - set(owned)):
        raise BackupError(
            f"{path} cannot be restored here, nothing was changed: it holds rows of "
            f"{', '.join(foreign)}, which this database leaves to the backend (USERS_SCHEMA)"
        )
    rows = _decoded_rows(path, report.user_id)
    try:
        async with engine.begin() as connection:
            dialect = connection.dialect.name
            while batch := await asyncio.to_thread(_next_batch, rows):
                for name, group in itertools.groupby(batch, key=lambda item: item[0]):
                    values = [row for _, row in group]
                    await refuse_foreign_ids(connection, owned[name], values, report.user_id, path)
                    await refuse_foreign_parents(
                        connection, owned[name], values, owned, report.user_id, path
                    )
                    statement = upsert_by_primary_key(dialect, owned[name].table)
                    await connection.execute(statement, values)
            for name in report.counts:
                await reset_identity_sequence(connection, owned[name].table)
    except IntegrityError as error:
        raise BackupError(
            f"{path} cannot be restored here, nothing was changed: a row conflicts with "
            f"another user's data ({type(error.orig).__name__})"
        ) from None
    return report
