"""The files family's jobs: the temp-directory sweep and the weekly per-user backups."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy import select

from jobs.context import JobContext
from jobs.db.models import User
from jobs.files.backup import backup_user
from jobs.files.cleanup import sweep_temp_dir
from jobs.registry import job
from jobs.retry import RetryPolicy

__all__ = ["backup_one_user", "backup_user_data", "cleanup_temp_files"]

logger = logging.getLogger(__name__)

USERS_PER_BATCH = 500


@job(family="files", timeout=1800, retry=RetryPolicy(max_tries=3, backoff_base=60.0))
async def cleanup_temp_files(ctx: JobContext) -> dict[str, int | bool]:
    """Delete files in ``TEMP_DIR`` older than ``TEMP_FILE_MAX_AGE`` and the dirs left empty."""
    settings = ctx.settings
    report = await asyncio.to_thread(sweep_temp_dir, settings.temp_dir, settings.temp_file_max_age)
    logger.info(
        "temp cleanup: %d files (%d bytes), %d links, %d dirs removed; %d vanished, %d failed, "
        "%d refused",
        report.files_removed,
        report.bytes_freed,
        report.links_removed,
        report.dirs_removed,
        report.vanished,
        report.failed,
        report.refused,
    )
    return report.as_dict()


def backup_job_id(user_id: int, when: dt.datetime) -> str:
    """The fan-out job id of ``user_id``'s backup in the ISO week of ``when``."""
    year, week, _ = when.isocalendar()
    return f"backup:{user_id}:{year}-W{week:02d}"


@job(family="files", retry=RetryPolicy(max_tries=3, backoff_base=60.0))
async def backup_one_user(ctx: JobContext, user_id: int) -> dict[str, Any]:
    """Write a complete backup of one user's rows and apply the retention of ``BACKUP_KEEP``."""
    settings = ctx.settings
    return await backup_user(ctx.engine, user_id, settings.backup_dir, keep=settings.backup_keep)


@job(family="files", timeout=600, retry=RetryPolicy(max_tries=3, backoff_base=60.0))
async def backup_user_data(ctx: JobContext) -> dict[str, int]:
    """Enqueue one ``backup_one_user`` job per user, at most one per user and ISO week."""
    week_of = dt.datetime.now(ctx.settings.timezone)
    enqueued = already = 0
    last_id = 0
    while True:
        async with ctx.sessions() as session:
            user_ids = list(
                await session.scalars(
                    select(User.id)
                    .where(User.id > last_id)
                    .order_by(User.id)
                    .limit(USERS_PER_BATCH)
                )
            )
        if not user_ids:
            break
        last_id = user_ids[-1]
        for user_id in user_ids:
            queued = await ctx.pool.enqueue_job(
                "backup_one_user", user_id=user_id, _job_id=backup_job_id(user_id, week_of)
            )
            if queued is None:
                already += 1
            else:
                enqueued += 1
    return {"enqueued": enqueued, "already_enqueued": already}
