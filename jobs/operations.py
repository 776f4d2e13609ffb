"""The operator commands behind ``python -m jobs health|status|failed``; each returns text."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from jobs.client import create_pool
from jobs.db.engine import create_engine, create_session_factory
from jobs.db.migrate import require_current_schema
from jobs.failures import (
    count_failed_since,
    get_failed_job,
    list_failed_jobs,
    purge_failed_jobs,
    requeue_failed_job,
    summary,
)
from jobs.families import known_families
from jobs.monitor import family_health, live_workers, local_worker, queue_stats
from jobs.outcome_report import failed_email_lines, outcome_lines
from jobs.settings import Settings

__all__ = [
    "Report",
    "failed_command",
    "failed_emails_report",
    "health_report",
    "local_health_report",
    "status_report",
]


@dataclass(frozen=True)
class Report:
    """What a command prints, and its exit code."""

    text: str
    exit_code: int = 0


def _redis(settings: Settings) -> Redis:
    """A plain client for reading health records: one connection, bounded connect time."""
    client: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    return client


async def health_report(settings: Settings, families: list[str]) -> Report:
    """Exit code 0 when every named family (default: all) has a live worker."""
    redis = _redis(settings)
    try:
        lines, dead = [], []
        for family in families or known_families():
            health = await family_health(redis, family)
            if health.alive:
                lines.append(
                    f"{family}: {health.workers} worker(s), last heartbeat "
                    f"{health.last_heartbeat_age_s:.1f}s ago"
                )
            else:
                dead.append(family)
                lines.append(f"{family}: no live worker")
    finally:
        await redis.aclose()
    return Report("\n".join(lines), 1 if dead else 0)


async def local_health_report(settings: Settings, families: list[str], pid: int | None) -> Report:
    """Exit code 0 when this host's worker of each named family beat recently.

    "Recently" is within two heartbeat intervals: one late beat is tolerated, a worker that
    stopped beating (hung, stopped, dead) is not, whatever its siblings on other hosts do.
    ``pid`` narrows the check to one process, for hosts that run several.
    """
    host, max_age = socket.gethostname(), 2 * settings.worker_heartbeat_interval
    who = f"host {host}" + (f", pid {pid}" if pid is not None else "")
    redis = _redis(settings)
    try:
        lines, dead = [], []
        for family in families:
            worker = await local_worker(redis, family, host=host, pid=pid)
            age = None if worker is None else max(0.0, time.time() - worker.last_heartbeat)
            if worker is not None and age is not None and age <= max_age:
                lines.append(
                    f"{family}: worker {worker.pid} on {host}, last heartbeat {age:.1f}s ago"
                )
                continue
            dead.append(family)
            lines.append(
                f"{family}: no heartbeat from the worker ({who}) in the last {max_age:g}s"
                if worker is None
                else f"{family}: worker {worker.pid} on {host} last beat {age:.0f}s ago "
                f"(more than {max_age:g}s): hung or stopped"
            )
    finally:
        await redis.aclose()
    return Report("\n".join(lines), 1 if dead else 0)


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
