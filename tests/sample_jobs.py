"""Jobs declared only for the tests, in the email family (whose queue the test workers read)."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from jobs import NO_RETRY, JobContext, PermanentJobError, RetryPolicy, TransientJobError, job

FAST_RETRY = RetryPolicy(max_tries=4, backoff_base=0.05, backoff_factor=2.0)


@job(family="email", name="test_echo")
async def echo(ctx: JobContext, number: int, label: str = "x") -> dict[str, object]:
    """Return the validated arguments and the try number."""
    return {"number": number, "label": label, "try": ctx.try_number}


@job(family="email", name="test_flaky", retry=FAST_RETRY)
async def flaky(ctx: JobContext, failures: int) -> str:
    """Fail transiently ``failures`` times, then succeed."""
    await ctx.pool.rpush(f"tries:{ctx.job_id}", ctx.try_number)
    if ctx.try_number <= failures:
        raise TransientJobError(f"transient failure {ctx.try_number}")
    return "done"


@job(
    family="email", name="test_always_transient", retry=RetryPolicy(max_tries=2, backoff_base=0.02)
)
async def always_transient(ctx: JobContext, api_token: str) -> None:
    """Fail transiently on every try."""
    raise ConnectionError("upstream refused the connection")


@job(family="email", name="test_broken", retry=FAST_RETRY)
async def broken(ctx: JobContext, password: str, note: str) -> None:
    """Fail with an error that is not transient."""
    raise ValueError(f"cannot handle {note}")


@job(family="email", name="test_slow", timeout=0.2, retry=NO_RETRY)
async def slow(ctx: JobContext) -> None:
    """Run longer than its timeout."""
    await asyncio.sleep(5)


@job(family="email", name="test_tick", retry=NO_RETRY)
async def tick(ctx: JobContext) -> None:
    """Record which scheduled run this is."""
    await ctx.pool.rpush("ticks", ctx.job_id)


@job(family="email", name="test_bad_query", retry=NO_RETRY)
async def bad_query(ctx: JobContext) -> None:
    """Query a table that does not exist: the driver's error arrives wrapped by SQLAlchemy."""
    async with ctx.engine.connect() as connection:
        await connection.execute(text("SELECT * FROM no_such_table"))


@job(family="email", name="test_stamp", retry=NO_RETRY)
async def stamp(ctx: JobContext, seconds: float = 0.0) -> None:
    """Record when the job started (Unix time, in the list ``started``), then sleep."""
    await ctx.pool.rpush("started", repr(time.time()))
    await asyncio.sleep(seconds)


@job(family="email", name="test_cron_stamp", retry=NO_RETRY)
async def cron_stamp(ctx: JobContext) -> None:
    """Record this scheduled run's job id and when it started, as ``<job id>@<Unix time>``."""
    await ctx.pool.rpush("cron_runs", f"{ctx.job_id}@{time.time()!r}")


@job(family="email", name="test_wait", retry=NO_RETRY)
async def wait(ctx: JobContext, seconds: float) -> str:
    """Note that it started, wait ``seconds``, and note how the wait ended."""
    events = f"events:{ctx.job_id}"
    await ctx.pool.rpush(events, "started")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        await ctx.pool.rpush(events, "cancelled")
        raise
    await ctx.pool.rpush(events, "finished")
    return "waited"


@job(family="email", name="test_refuse", retry=NO_RETRY)
async def refuse(ctx: JobContext, reason: str) -> None:
    """Fail for good with ``reason``."""
    raise PermanentJobError(reason)


@job(family="email", name="test_session_kind", retry=NO_RETRY)
async def session_kind(ctx: JobContext) -> dict[str, object]:
    """What the job's sessions are: their class and whether they expire objects on commit."""
    async with ctx.sessions() as session:
        await session.execute(text("SELECT 1"))
        return {
            "class": type(session).__name__,
            "expire_on_commit": session.sync_session.expire_on_commit,
        }


async def refused_database_statement() -> None:
    """Run a statement on a PostgreSQL that is not there (a closed port): connection refused."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from tests.smtp_server import free_port

    engine = create_async_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


@job(family="email", name="test_database_away", retry=RetryPolicy(max_tries=2, backoff_base=0.02))
async def database_away(ctx: JobContext, outages: int) -> int:
    """Find the database unreachable on the first ``outages`` calls; then the try number."""
    calls = await ctx.pool.incr(f"calls:{ctx.job_id}")
    if calls <= outages:
        await refused_database_statement()
    return ctx.try_number
