"""Deleting old rows in bounded batches, each batch its own short transaction.

One ``DELETE`` of a million expired rows would hold its locks (and, on SQLite, the database's
single write lock) for as long as it runs. Deleting by primary keys selected with ``LIMIT``
keeps every statement small, so the application's writes interleave with the clean-up.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.models import EmailStatus, FailedJob, OutboundEmail, UserSession

__all__ = [
    "BatchedDeletion",
    "IdModel",
    "delete_in_batches",
    "expired_sessions",
    "finished_emails_before",
    "old_failed_jobs",
]

IdModel = type[UserSession] | type[FailedJob] | type[OutboundEmail]


@dataclass(frozen=True)
class BatchedDeletion:
    """How many rows a clean-up deleted, in how many batches."""

    deleted: int
    batches: int


async def delete_in_batches(
    sessions: async_sessionmaker[AsyncSession],
    model: IdModel,
    condition: ColumnElement[bool],
    *,
    batch_size: int,
    time_budget: float | None = None,
) -> BatchedDeletion:
    """Delete the rows of ``model`` matching ``condition``, ``batch_size`` at a time.

    Stops when a batch comes back short, or (leaving the rest to the next run) when
    ``time_budget`` seconds have passed.
    """
    deleted = batches = 0
    started = time.monotonic()
    while time_budget is None or time.monotonic() - started < time_budget:
        async with sessions.begin() as session:
            ids = list(
                await session.scalars(
                    select(model.id).where(condition).order_by(model.id).limit(batch_size)
                )
            )
            if ids:
                await session.execute(delete(model).where(model.id.in_(ids)))
        if ids:
            deleted += len(ids)
            batches += 1
        if len(ids) < batch_size:
            break
    return BatchedDeletion(deleted=deleted, batches=batches)


def expired_sessions(now: dt.datetime) -> ColumnElement[bool]:
    """Login sessions whose expiry has passed."""
    return UserSession.expires_at < now


def old_failed_jobs(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Failed-job records written before ``cutoff``."""
    return FailedJob.failed_at < cutoff


def finished_emails_before(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Sent or failed e-mails finished (sent, or else queued) before ``cutoff``."""
    return OutboundEmail.status.in_([EmailStatus.SENT, EmailStatus.FAILED]) & (
        func.coalesce(OutboundEmail.sent_at, OutboundEmail.created_at) < cutoff
    )
