"""Job control from the producer's side: abort, the result of a failed job, a job's report."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_result
from arq.utils import timestamp_ms
from arq.worker import Worker
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.constants import queue_name
from jobs.control import JobState
from jobs.db import FailedJob
from jobs.errors import InvalidJobIdError, JobAbortedError, JobFailedError
from jobs.serializer import serialize
from jobs.settings import Settings
from tests import sample_jobs
from tests.conftest import make_worker, run_burst

CONTROL_JOBS = [sample_jobs.wait, sample_jobs.refuse, sample_jobs.slow, sample_jobs.echo]


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    """Wait until ``condition()`` holds (generous bound: the machine is shared)."""
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110 - the condition is in Redis
            await asyncio.sleep(0.02)


@pytest.fixture
async def running_worker(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Worker]:
    """An email-family worker running in the background (not in burst mode), migrated DB."""
    worker = await make_worker(settings, CONTROL_JOBS, burst=False)
    task = asyncio.create_task(worker.main())
    yield worker
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await worker.close()


async def events(pool: JobsPool, job_id: str) -> list[str]:
    """What ``test_wait`` noted about itself."""
    return [e.decode() for e in await pool.lrange(f"events:{job_id}", 0, -1)]


@pytest.mark.usefixtures("engine")
async def test_an_aborted_queued_or_deferred_job_never_runs(
    pool: JobsPool, settings: Settings
) -> None:
    """Queued and deferred jobs aborted before a worker comes are recorded aborted, unrun."""
    queued = await pool.enqueue_job("test_wait", seconds=0)
    deferred = await pool.enqueue_job("test_wait", seconds=0, _defer_by=3600)
    assert queued is not None and deferred is not None
    assert (await deferred.report()).state is JobState.DEFERRED
    assert await queued.request_abort() and await deferred.request_abort()
    assert (await queued.report()).abort_requested

    worker = await run_burst(await make_worker(settings, CONTROL_JOBS))

    assert worker.jobs_complete == 0
    for job in (queued, deferred):
        assert await events(pool, job.job_id) == []
        assert (await job.report()).state is JobState.ABORTED
        with pytest.raises(JobAbortedError, match=f"job {job.job_id} was aborted"):
            await job.result(timeout=1)


async def test_a_running_job_is_cancelled_and_recorded_as_aborted(
    pool: JobsPool,
    running_worker: Worker,
    sessions: async_sessionmaker[AsyncSession],
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """abort() cancels a running job within a poll; it is no failure, and the worker goes on."""
    caplog.set_level(logging.INFO, logger="jobs.job")
    job = await pool.enqueue_job("test_wait", seconds=120)
    assert job is not None

    async def started() -> bool:
        return await events(pool, job.job_id) == ["started"]

    await until(started)
    assert (await job.report()).state is JobState.IN_PROGRESS
    assert await job.abort(timeout=20) is True

    assert await events(pool, job.job_id) == ["started", "cancelled"]
    report = await job.report()
    assert (report.state, report.name, report.try_number) == (JobState.ABORTED, "test_wait", 1)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FailedJob)) == 0
    [consumer] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER]
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.arq.job.aborted"] is True
    assert [e.name for e in consumer.events] == ["job aborted"]
    assert "job test_wait was aborted" in caplog.text

    after = await pool.enqueue_job("test_echo", number=7)
    assert after is not None
    assert (await after.result(timeout=20))["number"] == 7


async def test_result_of_a_failed_job_raises_its_error_type_and_message(
    pool: JobsPool, running_worker: Worker
) -> None:
    """A permanent failure and a timeout come back as JobFailedError with type and message."""
    refused = await pool.enqueue_job("test_refuse", reason="no such report")
    timed_out = await pool.enqueue_job("test_slow")
    assert refused is not None and timed_out is not None
    with pytest.raises(JobFailedError) as failure:
        await refused.result(timeout=20)
    assert (failure.value.job_id, failure.value.error_type, failure.value.error_message) == (
        refused.job_id,
        "PermanentJobError",
        "no such report",
    )
    with pytest.raises(JobFailedError, match=r"JobTimeout: try 1 exceeded the 0\.2s timeout"):
        await timed_out.result(timeout=20)
    report = await (await pool.job(refused.job_id)).report()
    assert (report.state, report.error_type) == (JobState.FAILED, "PermanentJobError")


async def test_finished_or_unknown_jobs_are_not_aborted(
    pool: JobsPool, running_worker: Worker
) -> None:
    """Aborting a job that already succeeded, or that does not exist, answers False."""
    done = await pool.enqueue_job("test_echo", number=1)
    assert done is not None
    assert (await done.result(timeout=20))["number"] == 1
    assert await done.abort(timeout=1) is False
    assert (await done.report()).state is JobState.SUCCEEDED
    unknown = await pool.job("no-such-job")
    assert await unknown.abort(timeout=1) is False
    assert (await unknown.report()).state is JobState.NOT_FOUND
    with pytest.raises(InvalidJobIdError):
        await pool.job("has spaces")


async def test_a_report_never_loses_a_job_that_is_finishing(
    pool: JobsPool, settings: Settings
) -> None:
    """A job finished and put back 1,500 times by another client is never reported gone."""
    handle = await pool.enqueue_job("test_echo", number=1, _defer_by=3600)
    assert handle is not None
    job_key, result_key = job_key_prefix + handle.job_id, result_key_prefix + handle.job_id
    queue = queue_name("email")
    payload = await pool.get(job_key)
    score = await pool.zscore(queue, handle.job_id)
    now = timestamp_ms()
    result = serialize_result(
        "test_echo",
        (),
        {"number": 1},
        1,
        now,
        True,
        {"ok": 1},
        now,
        now,
        "ref",
        queue,
        handle.job_id,
        serializer=serialize,
    )
    other = Redis.from_url(settings.redis_url)

    async def finish_and_undo(times: int) -> None:
        for _ in range(times):
            async with other.pipeline(transaction=True) as finish:
                await (
                    finish.delete(job_key)
                    .zrem(queue, handle.job_id)
                    .set(result_key, result)
                    .execute()
                )
            async with other.pipeline(transaction=True) as undo:
                await (
                    undo.delete(result_key)
                    .set(job_key, payload)
                    .zadd(queue, {handle.job_id: score})
                    .execute()
                )

    async def report_states(times: int) -> list[JobState]:
        return [(await handle.report()).state for _ in range(times)]

    try:
        _, states = await asyncio.gather(finish_and_undo(1500), report_states(1500))
    finally:
        await other.aclose()
    assert JobState.NOT_FOUND not in states, Counter(states)
    assert {JobState.DEFERRED, JobState.SUCCEEDED} <= set(states)
