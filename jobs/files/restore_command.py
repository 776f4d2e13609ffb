"""``python -m jobs restore ARCHIVE``: the operator's side of a restore."""

from __future__ import annotations

from pathlib import Path

from jobs.db.engine import create_engine
from jobs.files.restore import restore_backup
from jobs.settings import Settings

__all__ = ["restore_archive"]


async def restore_archive(settings: Settings, archive: str) -> str:
    """Restore ``archive`` into ``DATABASE_URL``; one line saying what was restored.

    Raises :class:`jobs.files.BackupError` (nothing changed) for a damaged or foreign file.
    """
    engine = create_engine(settings)
    try:
        report = await restore_backup(engine, Path(archive))
    finally:
        await engine.dispose()
    tables = ", ".join(f"{table} {count}" for table, count in report.counts.items())
    return f"restored {report.rows} rows of user {report.user_id} from {archive} ({tables})"
