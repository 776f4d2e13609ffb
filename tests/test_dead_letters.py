"""Database outages in-process: which errors count, jobs that wait, and records kept in Redis."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sqlalchemy.exc
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from jobs import JobsPool
from jobs.db.engine import create_engine, create_session_factory
from jobs.db.models import FailedJob
from jobs.db.outage import is_database_unreachable
from jobs.dead_letters import CLAIMS_KEY, DEAD_LETTERS_KEY, DeadLetters
from jobs.failures import record_failed_job
from jobs.operations import failed_command
from jobs.settings import Settings
from tests import sample_jobs
from tests.conftest import make_worker, run_burst
from tests.smtp_server import free_port


async def _error_of(coroutine: object) -> BaseException:
    try:
        await coroutine  # type: ignore[misc]
    except Exception as exc:
        return exc
    raise AssertionError("no error")


async def _execute(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(statement))


async def test_refused_connections_count_as_unreachable_and_bad_sql_does_not(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Refused PostgreSQL, unopenable SQLite count; bad SQL, a constraint and other errors not."""
    assert is_database_unreachable(await _error_of(sample_jobs.refused_database_statement()))
    unopenable = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/absent/dir/jobs.db")
    assert is_database_unreachable(await _error_of(_execute(unopenable, "SELECT 1")))
    await unopenable.dispose()
    assert not is_database_unreachable(await _error_of(_execute(engine, "SELEC 1")))
    assert not is_database_unreachable(await _error_of(_execute(engine, "SELECT * FROM nope")))
    duplicate = "INSERT INTO jobs_alembic_version SELECT * FROM jobs_alembic_version"
    error = await _error_of(_execute(engine, duplicate))
    assert isinstance(error, sqlalchemy.exc.IntegrityError)
    assert not is_database_unreachable(error)
    assert not is_database_unreachable(ConnectionRefusedError("an HTTP peer, not the database"))


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_job_waits_for_the_database_beyond_its_max_tries(
    pool: JobsPool, settings: Settings, spans: object
) -> None:
    """max_tries=2, five tries find the database away: it waits, then succeeds as try 1."""
    settings = settings.model_copy(update={"database_outage_backoff_max_seconds": 0.05})
    job = await pool.enqueue_job("test_database_away", outages=5)
    assert job is not None
    worker = await run_burst(await make_worker(settings, [sample_jobs.database_away]))
    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (1, 0, 5)
    assert await job.result(timeout=1) == 1
    assert not await pool.exists(f"jobs:db-wait:{job.job_id}")
    events = [
        event.name
        for span in spans.get_finished_spans()  # type: ignore[attr-defined]
        for event in span.events
    ]
    assert events.count("waiting for the database") == 5


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_job_stops_waiting_after_the_outage_limit(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """DATABASE_OUTAGE_RETRY_SECONDS over: the unreachable database fails it as usual."""
    settings = settings.model_copy(
        update={"database_outage_retry_seconds": 0.3, "database_outage_backoff_max_seconds": 0.1}
    )
    await pool.enqueue_job("test_database_away", outages=1000)
    worker = await run_burst(await make_worker(settings, [sample_jobs.database_away]))
    assert worker.jobs_failed == 1
    async with sessions() as session:
        [row] = await session.scalars(select(FailedJob))
    assert row.error_type == "ConnectionRefusedError" and row.tries == 2


async def _unreachable_sessions() -> async_sessionmaker[AsyncSession]:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none"
    return create_session_factory(create_engine(Settings(), url=url))


async def _keep_failures(letters: DeadLetters, count: int) -> None:
    down = await _unreachable_sessions()
    for number in range(count):
        kept = await record_failed_job(
            down,
            job_id=f"job-{number}",
            job_name="send_email",
            queue="jobs:queue:email",
            arguments={"to": "a@example.com"},
            error_type="PermanentJobError",
            error_message="no",
            tries=1,
            trace_id=None,
            dead_letters=letters,
        )
        assert kept


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return sorted(r.job_id for r in await session.scalars(select(FailedJob)))


async def test_failures_kept_in_redis_are_listed_then_drained_once_by_two_workers(
    redis_url: str, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Failures the database cannot take wait in Redis, show in `failed list`, land once each."""
    redis = Redis.from_url(redis_url)
    letters = DeadLetters(redis, 1000)
    await _keep_failures(letters, 40)
    assert await letters.waiting() == 40
    listing = await failed_command(settings, "list")
    assert "40 failed job(s) wait in Redis" in listing.text
    written = await asyncio.gather(letters.drain(sessions), letters.drain(sessions))
    assert sum(written) == 40
    assert await _rows(sessions) == sorted(f"job-{n}" for n in range(40))
    assert await letters.waiting() == 0
    assert "wait in Redis" not in (await failed_command(settings, "list")).text
    await redis.aclose()


async def test_a_claim_left_by_a_dead_drainer_is_given_back_and_not_stored_twice(
    redis_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A drainer that died after writing: its expired claim returns, the record is not doubled."""
    redis = Redis.from_url(redis_url)
    letters = DeadLetters(redis, 1000)
    await _keep_failures(letters, 1)
    assert await letters.drain(sessions) == 1
    [raw] = await redis.lrange(DEAD_LETTERS_KEY, 0, -1) or [None]
    assert raw is None
    # replay: the same entry claimed by a drainer that died after its insert
    async with sessions() as session:
        [row] = await session.scalars(select(FailedJob))
    entry = json.dumps(
        {
            "kind": "failed_job",
            "id": "replayed",
            "at": row.failed_at.isoformat(),
            "data": {
                **{c: getattr(row, c) for c in ("job_id", "job_name", "queue", "arguments")},
                **{c: getattr(row, c) for c in ("error_type", "error_message", "error_cause")},
                **{c: getattr(row, c) for c in ("tries", "trace_id", "span_id")},
                "failed_at": row.failed_at.isoformat(),
            },
        }
    )
    await redis.hset(CLAIMS_KEY, entry, 0)  # claimed long ago
    assert await letters.drain(sessions) == 1
    assert await _rows(sessions) == ["job-0"]
    assert await letters.waiting() == 0
    await redis.aclose()


async def test_the_dead_letter_list_is_bounded(redis_url: str) -> None:
    """Beyond DEAD_LETTER_MAX_ENTRIES the oldest records are dropped, the newest kept."""
    redis = Redis.from_url(redis_url)
    letters = DeadLetters(redis, 3)
    for number in range(5):
        assert await letters.keep("failed_job", {"job_id": f"j{number}"})
    kept = [
        json.loads(raw)["data"]["job_id"] for raw in await redis.lrange(DEAD_LETTERS_KEY, 0, -1)
    ]
    assert kept == ["j4", "j3", "j2"]
    await redis.aclose()
