"""The maintenance family on SQLite and PostgreSQL: optimisation reports and clean-ups."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import jobs.maintenance
from jobs import JobsPool
from jobs.db import EmailStatus, FailedJob, OutboundEmail, User, UserSession, utcnow
from jobs.maintenance import cleanup_old_sessions, optimize_database
from jobs.settings import Settings, load_settings
from jobs.worker import worker_options
from tests.conftest import make_worker, run_burst

MAINTENANCE_JOBS = [optimize_database, cleanup_old_sessions]
UTC = dt.UTC


async def run_job(pool: JobsPool, settings: Settings, name: str) -> Any:
    """Enqueue ``name``, run a maintenance worker in burst mode, and return the job's result."""
    job = await pool.enqueue_job(name)
    assert job is not None
    await run_burst(await make_worker(settings, MAINTENANCE_JOBS, family="maintenance"))
    return await job.result(timeout=1)


async def add_user(sessions: async_sessionmaker[AsyncSession], email: str) -> int:
    """Insert a user; its id."""
    async with sessions.begin() as session:
        user = User(email=email, display_name=email.split("@")[0])
        session.add(user)
        await session.flush()
        return user.id


async def add_sessions(
    sessions: async_sessionmaker[AsyncSession], user_id: int, expires: list[dt.datetime]
) -> None:
    """Insert one login session per expiry time."""
    async with sessions.begin() as session:
        await session.execute(
            insert(UserSession),
            [
                {"user_id": user_id, "token_hash": f"t{user_id}-{i}", "expires_at": at}
                for i, at in enumerate(expires)
            ],
        )


async def test_cleanup_deletes_expired_sessions_in_batches_and_keeps_the_rest(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """25 expired of 30 sessions go in 3 batches of at most 10; the 5 unexpired stay."""
    user_id = await add_user(sessions, "ann@example.com")
    now = utcnow()
    expired = [now - dt.timedelta(minutes=i + 1) for i in range(25)]
    alive = [now + dt.timedelta(hours=i + 1) for i in range(5)]
    await add_sessions(sessions, user_id, expired[:12] + alive + expired[12:])
    small = settings.model_copy(update={"session_cleanup_batch_size": 10})
    result = await run_job(pool, small, "cleanup_old_sessions")
    assert (result["sessions_deleted"], result["sessions_batches"]) == (25, 3)
    async with sessions() as session:
        left = list(await session.scalars(select(UserSession.expires_at)))
    assert sorted(left) == sorted(alive)


async def test_cleanup_applies_failed_job_and_email_retention(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Failed jobs and sent/failed e-mails past retention go; recent or queued ones stay."""
    now = utcnow()
    old, recent = now - dt.timedelta(days=40), now - dt.timedelta(days=5)
    async with sessions.begin() as session:
        for name, at in (("old", old), ("recent", recent)):
            session.add(
                FailedJob(
                    job_id=name,
                    job_name=name,
                    queue="q",
                    arguments={},
                    error_type="E",
                    error_message="m",
                    tries=1,
                    failed_at=at,
                )
            )
        for subject, status, created in (
            ("old-sent", EmailStatus.SENT, old),
            ("old-failed", EmailStatus.FAILED, old),
            ("old-queued", EmailStatus.QUEUED, old),
            ("recent-sent", EmailStatus.SENT, recent),
        ):
            session.add(
                OutboundEmail(
                    to_address="a@example.com",
                    subject=subject,
                    body_text="t",
                    status=status,
                    created_at=created,
                    sent_at=created if status is EmailStatus.SENT else None,
                )
            )
    retention = settings.model_copy(
        update={
            "failed_job_retention": dt.timedelta(days=30),
            "email_retention": dt.timedelta(days=30),
        }
    )
    result = await run_job(pool, retention, "cleanup_old_sessions")
    assert (result["failed_jobs_deleted"], result["emails_deleted"]) == (1, 2)
    async with sessions() as session:
        assert list(await session.scalars(select(FailedJob.job_id))) == ["recent"]
        subjects = set(await session.scalars(select(OutboundEmail.subject)))
    assert subjects == {"old-queued", "recent-sent"}


async def churn_sessions(sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> None:
    """Insert 400 sessions with large tokens and delete 300, leaving dead rows or free pages."""
    user_id = await add_user(sessions, "bob@example.com")
    far = utcnow() + dt.timedelta(days=1)
    async with sessions.begin() as session:
        await session.execute(
            insert(UserSession),
            [
                {"user_id": user_id, "token_hash": f"{i:04d}" + "x" * 120, "expires_at": far}
                for i in range(400)
            ],
        )
    async with sessions.begin() as session:
        await session.execute(delete(UserSession).where(UserSession.token_hash < "0300"))
        if engine.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_stat_force_next_flush()"))


async def test_optimize_database_reports_per_table_before_and_after(
    pool: JobsPool,
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Every project table is reported; the churned table's dead rows or free pages are gone."""
    await churn_sessions(sessions, engine)
    result = await run_job(pool, settings, "optimize_database")
    assert set(result["tables"]) >= {"users", "user_sessions", "ai_tasks", "outbound_emails"}
    assert result["skipped"] == [] and result["seconds"] >= 0
    report = result["tables"]["user_sessions"]
    assert report["size_bytes_before"] > 0 and report["size_bytes_after"] > 0
    if engine.dialect.name == "postgresql":
        assert result["database"] == "postgresql"
        assert report["dead_rows_before"] >= 300
        assert report["dead_rows_after"] == 0
        assert report["status"] == "optimized" and report["seconds"] >= 0
    else:
        assert result["database"] == "sqlite" and result["vacuumed"] is True
        assert result["free_pages_before"] > 0 and result["free_pages_after"] == 0
        assert result["pages_after"] < result["pages_before"]
        assert report["size_bytes_after"] < report["size_bytes_before"]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(UserSession)) == 100


async def test_sqlite_is_not_vacuumed_below_the_free_page_threshold(
    pool: JobsPool,
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """With SQLITE_VACUUM_FREE_RATIO=1.0 SQLite is analysed but never vacuumed."""
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    await churn_sessions(sessions, engine)
    result = await run_job(
        pool, settings.model_copy(update={"sqlite_vacuum_free_ratio": 1.0}), "optimize_database"
    )
    assert result["vacuumed"] is False
    # ANALYZE may reuse a free page for its statistics; the file is not rewritten
    assert result["free_pages_before"] > 0 and result["free_pages_after"] > 0
    assert result["pages_after"] >= result["pages_before"]


async def test_postgres_table_locked_by_the_application_is_skipped(
    pool: JobsPool, settings: Settings, engine: AsyncEngine
) -> None:
    """A table another transaction holds an EXCLUSIVE lock on is skipped; the others are done."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    async with engine.connect() as holder:
        await holder.execute(text("LOCK TABLE notion_pages IN EXCLUSIVE MODE"))
        quick = settings.model_copy(update={"vacuum_lock_timeout": 0.2})
        result = await run_job(pool, quick, "optimize_database")
        await holder.rollback()
    assert result["skipped"] == ["notion_pages"]
    skipped = result["tables"]["notion_pages"]
    assert skipped["status"] == "skipped" and skipped["reason"] == "lock not granted within 0.2s"
    assert result["tables"]["users"]["status"] == "optimized"


def _next_times(name: str, start: dt.datetime, count: int) -> list[str]:
    options = worker_options(
        "maintenance",
        load_settings(schedule_timezone="Europe/Berlin"),
        [],
        list(vars(jobs.maintenance.WorkerSettings)["_declared_crons"]),
    )
    [cron] = [c for c in options["cron_jobs"] if c.name == name]
    times = []
    cron.calculate_next(start)
    for _ in range(count):
        times.append(cron.next_run.astimezone(cron.schedule.timezone).strftime("%a %Y-%m-%d %H:%M"))
        cron.calculate_next(cron.next_run)
    return times


def test_maintenance_cron_entries_fire_at_their_wall_clock_times() -> None:
    """optimize_database runs Sundays 03:00 and cleanup_old_sessions daily 04:00 local time."""
    start = dt.datetime(2026, 3, 26, 12, tzinfo=UTC)  # Berlin springs forward on Sunday 29th
    assert _next_times("optimize_database", start, 2) == [
        "Sun 2026-03-29 03:00",
        "Sun 2026-04-05 03:00",
    ]
    assert _next_times("cleanup_old_sessions", start, 4) == [
        "Fri 2026-03-27 04:00",
        "Sat 2026-03-28 04:00",
        "Sun 2026-03-29 04:00",
        "Mon 2026-03-30 04:00",
    ]
