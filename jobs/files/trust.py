"""What a restore refuses: an archive outside its user's directory, rows reaching other users.

An archive lives in ``BACKUP_DIR/<user id>/``; the directory, which only the backup job
writes, must name the same user as the archive's header. Every row must belong to the user
(checked while verifying), and in the database no row of the archive may take an id held by
another user's row, nor point through a foreign key at a row in a user-owned table that is not
the user's — a calendar event whose ``account_id`` names someone else's Google account would
otherwise join the user's data to theirs. Parents are restored before children, in the same
transaction, so a parent that comes from the archive itself is found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from jobs.files.archive import BackupError
from jobs.files.ownership import OwnedTable

__all__ = ["refuse_foreign_ids", "refuse_foreign_parents", "refuse_misplaced_archive"]

#: How many refused parent ids an error message lists.
SHOWN_IDS = 5


def refuse_misplaced_archive(path: Path, user_id: int) -> None:
    """Raise BackupError unless ``path`` lies in the backup directory of ``user_id``."""
    directory = path.resolve().parent.name
    if not (directory.isascii() and directory.isdecimal()):
        raise BackupError(
            f"{path} is not in a user's backup directory (BACKUP_DIR/<user id>/): put it in the "
            f"directory of the user it belongs to; nothing was changed"
        )
    if int(directory) != user_id:
        raise BackupError(
            f"{path} lies in the backup directory of user {int(directory)} but is a backup of "
            f"user {user_id}: refused, nothing was changed"
        )


def _refused(path: Path, reason: str) -> BackupError:
    return BackupError(f"{path} cannot be restored here, nothing was changed: {reason}")


async def refuse_foreign_ids(
    connection: AsyncConnection,
    owned: OwnedTable,
    rows: list[dict[str, Any]],
    user_id: int,
    path: Path,
) -> None:
    """Raise BackupError if a primary key of ``rows`` is taken by a row of someone else."""
    keys = list(owned.table.primary_key.columns)
    if len(keys) != 1:
        return
    ids = [row[keys[0].name] for row in rows]
    taken = select(func.count()).select_from(owned.table).where(keys[0].in_(ids))
    existing = await connection.scalar(taken)
    ours = await connection.scalar(taken.where(owned.owned_by(user_id)))
    if existing != ours:
        raise _refused(
            path, f"ids of {owned.name} rows in it belong to another user's rows in this database"
        )


async def refuse_foreign_parents(
    connection: AsyncConnection,
    owned: OwnedTable,
    rows: list[dict[str, Any]],
    owned_by_name: dict[str, OwnedTable],
    user_id: int,
    path: Path,
) -> None:
    """Raise BackupError if a row of ``rows`` points at a user-owned row that is not the user's.

    Checked before ``rows`` are written: their parents in other tables are already in place. A
    reference into the batch itself (a self-referencing table) counts as the user's.
    """
    own_ids = {row.get(column.name) for column in owned.table.primary_key.columns for row in rows}
    for constraint in owned.table.foreign_key_constraints:
        parent = owned_by_name.get(constraint.referred_table.name)
        if parent is None or len(constraint.elements) != 1:
            continue  # not user data (shared rows), or a composite key
        [element] = constraint.elements
        wanted = {row.get(element.parent.name) for row in rows} - {None}
        if parent.table is owned.table:
            wanted -= own_ids
        if not wanted:
            continue
        found = await connection.scalars(
            select(element.column).where(element.column.in_(wanted), parent.owned_by(user_id))
        )
        refused = sorted(wanted - set(found), key=str)
        if refused:
            shown = ", ".join(str(value) for value in refused[:SHOWN_IDS])
            more = f" and {len(refused) - SHOWN_IDS} more" if len(refused) > SHOWN_IDS else ""
            raise _refused(
                path,
                f"{owned.name} rows refer to {parent.name} row(s) {shown}{more} that are not "
                f"user {user_id}'s",
            )
