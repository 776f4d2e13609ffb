"""The maintenance family's jobs: database optimisation and retention clean-ups."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import ColumnElement, Table

from jobs.context import JobContext
from jobs.db.base import Base, utcnow
from jobs.db.engine import has_relation, is_postgres
from jobs.db.layout import DatabaseLayout, layout_of
from jobs.db.models import FailedJob, OutboundEmail, UserSession
from jobs.db.vacuum import optimize_postgres, optimize_sqlite
from jobs.maintenance.retention import (
    IdModel,
    delete_in_batches,
    expired_sessions,
    finished_emails_before,
    old_failed_jobs,
)
from jobs.registry import job
from jobs.retry import RetryPolicy

__all__ = ["cleanup_old_sessions", "optimize_database"]

logger = logging.getLogger(__name__)


def project_tables(layout: DatabaseLayout) -> list[Table]:
    """The tables the jobs own in this database, in dependency order."""
    return [table for table in Base.metadata.sorted_tables if layout.is_own_table(table)]


@job(family="maintenance", retry=RetryPolicy(max_tries=2, backoff_base=300.0))
async def optimize_database(ctx: JobContext) -> dict[str, Any]:
    """Vacuum and analyse the project's tables; report size and dead rows per table.

    PostgreSQL tables are vacuumed one at a time with ``VACUUM_LOCK_TIMEOUT``; a table whose
    lock is not granted in time is reported as skipped. SQLite is analysed, optimised, and
    vacuumed when its share of free pages exceeds ``SQLITE_VACUUM_FREE_RATIO``.
    """
    started = time.perf_counter()
    tables = project_tables(layout_of(ctx.engine))
    result: dict[str, Any]
    if is_postgres(ctx.engine):
        reports = await optimize_postgres(
            ctx.engine, tables, lock_timeout=ctx.settings.vacuum_lock_timeout
        )
        result = {
            "database": "postgresql",
            "tables": {r.table: r.as_dict() for r in reports},
            "skipped": [r.table for r in reports if r.status == "skipped"],
        }
    else:
        report = await optimize_sqlite(
            ctx.engine, tables, vacuum_free_ratio=ctx.settings.sqlite_vacuum_free_ratio
        )
        result = {
            "database": "sqlite",
            "tables": {r.table: r.as_dict() for r in report.tables},
            "skipped": [],
            "vacuumed": report.vacuumed,
            "pages_before": report.page_count_before,
            "pages_after": report.page_count_after,
            "free_pages_before": report.free_pages_before,
            "free_pages_after": report.free_pages_after,
        }
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


@job(family="maintenance", retry=RetryPolicy(max_tries=3, backoff_base=60.0))
async def cleanup_old_sessions(ctx: JobContext) -> dict[str, int]:
    """Delete expired login sessions, old failed-job records and old finished e-mails.

    Each kind is deleted ``SESSION_CLEANUP_BATCH_SIZE`` rows per short transaction; what does
    not fit in the job's time is left for the next day's run.
    """
    settings = ctx.settings
    now = utcnow()
    budget = 0.25 * settings.maintenance_worker.job_timeout
    chores: dict[str, tuple[IdModel, ColumnElement[bool]]] = {
        "sessions": (UserSession, expired_sessions(now)),
        "failed_jobs": (FailedJob, old_failed_jobs(now - settings.failed_job_retention)),
        "emails": (OutboundEmail, finished_emails_before(now - settings.email_retention)),
    }
    counts: dict[str, int] = {}
    if not await has_relation(ctx.engine, UserSession.__table__):
        # the backend owns its users and offers no user_sessions relation to clean
        logger.info("no user_sessions relation in USERS_SCHEMA: sessions are not cleaned")
        del chores["sessions"]
        counts["sessions_skipped"] = 1
    for name, (model, condition) in chores.items():
        deletion = await delete_in_batches(
            ctx.sessions,
            model,
            condition,
            batch_size=settings.session_cleanup_batch_size,
            time_budget=budget,
        )
        counts[f"{name}_deleted"] = deletion.deleted
        counts[f"{name}_batches"] = deletion.batches
    return counts
