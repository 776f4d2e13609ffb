"""Backing up one user's rows into an archive under ``BACKUP_DIR/<user id>/``, then retention.

Rows are read table by table with a server-side cursor and written batch by batch, so memory
stays flat however many rows the user has. On PostgreSQL the whole backup reads one
``REPEATABLE READ`` snapshot, so rows of different tables are consistent with each other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from jobs.db.base import Base
from jobs.db.layout import layout_of
from jobs.db.migrate import current_revision
from jobs.db.models import User
from jobs.files.archive import ARCHIVE_SUFFIX, PARTIAL_SUFFIX, ArchiveWriter
from jobs.files.ownership import owned_tables

__all__ = ["BACKUP_PREFIX", "apply_retention", "backup_user", "list_backups"]

logger = logging.getLogger(__name__)

BACKUP_PREFIX = "backup-"
#: A partial file this old belongs to a backup that died; retention deletes it.
STALE_PARTIAL_SECONDS = 24 * 3600.0


def list_backups(directory: Path) -> list[Path]:
    """A user's complete backups, newest first (their names sort by creation time)."""
    if not directory.is_dir():
        return []
    names = [
        entry.name
        for entry in os.scandir(directory)
        if entry.name.startswith(BACKUP_PREFIX)
        and entry.name.endswith(ARCHIVE_SUFFIX)
        and entry.is_file(follow_symlinks=False)
    ]
    return [directory / name for name in sorted(names, reverse=True)]


def apply_retention(directory: Path, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` backups, and stale partial files; the names deleted."""
    deleted = [path for path in list_backups(directory)[keep:]]
    cutoff = time.time() - STALE_PARTIAL_SECONDS
    for entry in os.scandir(directory):
        if entry.name.endswith(PARTIAL_SUFFIX) and entry.stat().st_mtime < cutoff:
            deleted.append(directory / entry.name)
    for path in deleted:
        path.unlink(missing_ok=True)
    return [path.name for path in deleted]


def _user_directory(backup_dir: Path, user_id: int) -> Path:
    backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = backup_dir / str(user_id)
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)
    return directory


async def backup_user(
    engine: AsyncEngine,
    user_id: int,
    backup_dir: Path,
    *,
    keep: int,
    batch_size: int = 1000,
) -> dict[str, Any]:
    """Write a complete backup of ``user_id``'s rows, then keep only the newest ``keep``.

    Returns the archive's path, row counts and checksum, and the old backups deleted; a user
    that does not exist (any more) gets no file.
    """
    tables = owned_tables(Base.metadata, include=layout_of(engine).is_own_table)
    users = User.__table__
    revision = await current_revision(engine)
    now = dt.datetime.now(dt.UTC)
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            found = await connection.scalar(select(users.c.id).where(users.c.id == user_id))
            if found is None:
                return {"user_id": user_id, "status": "no such user"}
            directory = await asyncio.to_thread(_user_directory, backup_dir, user_id)
            path = directory / f"{BACKUP_PREFIX}{now:%Y%m%dT%H%M%S%fZ}{ARCHIVE_SUFFIX}"
            header = {
                "user_id": user_id,
                "schema_revision": revision,
                "created_at": now.isoformat(),
                "tables": [owned.name for owned in tables],
            }
            writer = await asyncio.to_thread(ArchiveWriter, path, header)
            try:
                for owned in tables:
                    statement = owned.select_rows(user_id).execution_options(yield_per=batch_size)
                    result = await connection.stream(statement)
                    async for batch in result.mappings().partitions(batch_size):
                        await asyncio.to_thread(writer.write_rows, owned.name, batch)
                manifest = await asyncio.to_thread(writer.finish)
            except BaseException:
                writer.abort()
                raise
    deleted = await asyncio.to_thread(apply_retention, directory, keep)
    logger.info(
        "backed up %d rows of user %d to %s; deleted %d old backups",
        manifest["rows"],
        user_id,
        path.name,
        len(deleted),
    )
    return {
        "user_id": user_id,
        "status": "complete",
        "path": str(path),
        "rows": manifest["rows"],
        "counts": manifest["counts"],
        "sha256": manifest["sha256"],
        "deleted": deleted,
    }
