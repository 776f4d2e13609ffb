"""The failed-jobs table: writing a record when a job fails for good, and reading them."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.models import FailedJob

__all__ = ["recent_failed_jobs", "record_failed_job"]

logger = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 4000


async def record_failed_job(
    sessions: async_sessionmaker[AsyncSession],
    *,
    job_id: str,
    job_name: str,
    queue: str,
    arguments: dict[str, Any],
    error_type: str,
    error_message: str,
    tries: int,
    trace_id: str | None,
    span_id: str | None = None,
) -> bool:
    """Store one permanent failure; returns False (and logs) if the database refused it.

    ``arguments`` must already have its secrets masked.
    """
    record = FailedJob(
        job_id=job_id,
        job_name=job_name,
        queue=queue,
        arguments=arguments,
        error_type=error_type,
        error_message=error_message[:MAX_MESSAGE_LENGTH],
        tries=tries,
        trace_id=trace_id,
        span_id=span_id,
    )
    try:
        async with sessions.begin() as session:
            session.add(record)
    except Exception as exc:  # the job is failing already; never let bookkeeping crash the worker
        logger.error(
            "could not record failed job %s (%s): %s", job_id, job_name, type(exc).__name__
        )
        return False
    return True


async def recent_failed_jobs(
    sessions: async_sessionmaker[AsyncSession], *, limit: int = 50
) -> list[FailedJob]:
    """The newest failed-job records first."""
    async with sessions() as session:
        result = await session.scalars(
            select(FailedJob).order_by(FailedJob.failed_at.desc(), FailedJob.id.desc()).limit(limit)
        )
        return list(result)
