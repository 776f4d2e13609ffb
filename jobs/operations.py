"""The operator commands behind ``python -m jobs status|failed|emails``; each returns text."""

from __future__ import annotations

import datetime as dt
import json

from jobs.client import create_pool
from jobs.db.engine import create_engine, create_session_factory
from jobs.db.migrate import require_current_schema
from jobs.dead_letters import DeadLetters
from jobs.failures import (
    count_failed_since,
    get_failed_job,
    list_failed_jobs,
    purge_failed_jobs,
    requeue_failed_job,
    summary,
)
from jobs.families import known_families
from jobs.health import Report
from jobs.monitor import live_workers, queue_stats
from jobs.outcome_report import failed_email_lines, outcome_lines
from jobs.settings import Settings

__all__ = [
    "Report",
    "failed_command",
    "failed_emails_report",
    "status_report",
]


async def status_report(settings: Settings) -> Report:
    """One screen: per family, queue depth, deferred, running, failed in the last hour, workers."""
    pool = await create_pool(settings)
    engine = create_engine(settings)
    try:
        await require_current_schema(engine)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        sessions = create_session_factory(engine)
        failed = await count_failed_since(sessions, since)
        header = (
            f"{'family':12} {'queued':>7} {'deferred':>8} {'oldest':>8} {'running':>7} "
            f"{'failed 1h':>9} {'workers':>7}"
        )
        lines = [header]
        for family in known_families():
            stats = await queue_stats(pool, family)
            workers = await live_workers(pool, family)
            lines.append(
                f"{family:12} {stats.ready:7d} {stats.scheduled:8d} {stats.oldest_age_s:7.0f}s "
                f"{sum(w.running for w in workers):7d} {failed.get(stats.queue, 0):9d} "
                f"{len(workers):7d}"
            )
        lines += ["", *await outcome_lines(sessions, since)]
    finally:
        await pool.aclose()
        await engine.dispose()
    return Report("\n".join(lines))


async def failed_emails_report(settings: Settings, *, limit: int = 50) -> Report:
    """``emails failed``: the newest e-mails that failed for good, with the server's reply."""
    engine = create_engine(settings)
    try:
        await require_current_schema(engine)
        lines = await failed_email_lines(create_session_factory(engine), limit=limit)
    finally:
        await engine.dispose()
    return Report("\n".join(lines) or "no failed e-mails")


async def _waiting_in_redis(settings: Settings) -> int:
    """Records kept in the dead-letter list, 0 if Redis cannot be asked."""
    pool = await create_pool(settings)
    try:
        return await DeadLetters(pool, settings.dead_letter_max_entries).waiting()
    except Exception:
        return 0
    finally:
        await pool.aclose()


async def failed_command(
    settings: Settings,
    action: str,
    *,
    record_id: int | None = None,
    limit: int = 50,
    job_name: str | None = None,
    older_than_days: float | None = None,
) -> Report:
    """``failed list|show|requeue|purge`` over the failed-jobs table."""
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    try:
        await require_current_schema(engine)
        if action == "list":
            records = await list_failed_jobs(sessions, limit=limit, job_name=job_name)
            lines = [
                f"{r.id:6d} {r.failed_at:%Y-%m-%d %H:%M:%S} {r.job_name:28} {summary(r)}"
                + (f" (requeued as {r.requeued_job_id})" if r.requeued_job_id else "")
                for r in records
            ]
            waiting = await _waiting_in_redis(settings)
            if waiting:
                lines.append(
                    f"{waiting} failed job(s) wait in Redis to be written here "
                    "(kept while the database was unreachable; a worker writes them)"
                )
            return Report("\n".join(lines) or "no failed jobs")
        if action == "show":
            assert record_id is not None
            record = await get_failed_job(sessions, record_id)
            fields = {
                column: getattr(record, column)
                for column in record.__table__.columns.keys()  # noqa: SIM118 - a SQLAlchemy collection
            }
            return Report(json.dumps(fields, indent=2, default=str))
        if action == "requeue":
            assert record_id is not None
            pool = await create_pool(settings)
            try:
                job_id = await requeue_failed_job(sessions, pool, record_id)
            finally:
                await pool.aclose()
            return Report(f"requeued failed job {record_id} as job {job_id}")
        if action == "purge":
            older = None if older_than_days is None else dt.timedelta(days=older_than_days)
            count = await purge_failed_jobs(sessions, older_than=older)
            return Report(f"deleted {count} failed-job record(s)")
        raise ValueError(f"unknown action {action!r}")
    finally:
        await engine.dispose()
