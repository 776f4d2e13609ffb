"""The shared runtime: validation at both ends, retries with backoff, permanent failures."""

from __future__ import annotations

import pickle

import pytest
from arq.connections import ArqRedis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobArgumentsError, JobsPool
from jobs.constants import HEADERS_KWARG
from jobs.db import FailedJob
from jobs.serializer import serialize
from jobs.settings import Settings
from tests import sample_jobs
from tests.conftest import make_worker, run_burst

pytestmark = pytest.mark.usefixtures("engine")


async def failed_rows(sessions: async_sessionmaker[AsyncSession]) -> list[FailedJob]:
    """Every failed-job record, oldest first."""
    async with sessions() as session:
        return list(await session.scalars(select(FailedJob).order_by(FailedJob.id)))


async def test_enqueue_rejects_bad_arguments_before_touching_redis(pool: JobsPool) -> None:
    """A wrong type, a missing and an unknown argument each raise JobArgumentsError at once."""
    with pytest.raises(JobArgumentsError, match="number"):
        await pool.enqueue_job("test_echo", number="not a number")
    with pytest.raises(JobArgumentsError, match="number: Field required"):
        await pool.enqueue_job("test_echo", label="only")
    with pytest.raises(JobArgumentsError, match="colour: Extra inputs are not permitted"):
        await pool.enqueue_job("test_echo", number=1, colour="red")
    with pytest.raises(JobArgumentsError, match="by keyword"):
        await pool.enqueue_job("test_echo", 1)
    assert await pool.zcard("jobs:queue:email") == 0


async def test_worker_validates_again_and_records_malformed_payload(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A payload written past the client (number='abc') fails for good; the next job runs."""
    raw = ArqRedis.from_url(settings.redis_url)
    raw.job_serializer = serialize
    await raw.enqueue_job("test_echo", _queue_name="jobs:queue:email", _job_id="bad", number="abc")
    await raw.enqueue_job("test_echo", _queue_name="jobs:queue:email", _job_id="good", number=3)
    await raw.aclose()
    worker = await run_burst(await make_worker(settings, [sample_jobs.echo]))
    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (1, 1, 0)
    [row] = await failed_rows(sessions)
    assert (row.job_id, row.error_type, row.tries) == ("bad", "JobArgumentsError", 1)
    assert "number: Input should be a valid integer" in row.error_message


async def test_pickle_payload_is_refused_without_running_code(settings: Settings) -> None:
    """A pickled job in Redis fails to deserialize (no pickle), and the worker carries on."""
    redis = ArqRedis.from_url(settings.redis_url)
    payload = {"t": 1, "f": "test_echo", "a": [], "k": {"number": 1}, "et": 0}
    await redis.set("arq:job:pickled", pickle.dumps(payload))
    await redis.zadd("jobs:queue:email", {"pickled": 1})
    await redis.aclose()
    worker = await run_burst(await make_worker(settings, [sample_jobs.echo]))
    assert (worker.jobs_complete, worker.jobs_failed) == (0, 1)


async def test_transient_failures_retry_with_growing_backoff_then_succeed(
    pool: JobsPool, settings: Settings, spans: object
) -> None:
    """test_flaky fails twice transiently, is retried with backoff, and succeeds on try 3."""
    job = await pool.enqueue_job("test_flaky", failures=2)
    assert job is not None
    worker = await run_burst(await make_worker(settings, [sample_jobs.flaky]))
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (1, 2, 0)
    assert await pool.lrange(f"tries:{job.job_id}", 0, -1) == [b"1", b"2", b"3"]
    assert await job.result(timeout=1) == "done"
    tries = sorted(
        (s for s in spans.get_finished_spans() if s.name == "process jobs:queue:email"),  # type: ignore[attr-defined]
        key=lambda s: s.attributes["messaging.arq.job.try"],
    )
    delays = [s.attributes.get("messaging.arq.retry.delay_s") for s in tries]
    assert len(tries) == 3 and delays[2] is None
    # equal jitter: first delay in [0.025, 0.05], second in [0.05, 0.1]
    assert 0.025 <= delays[0] <= 0.05 and 0.05 <= delays[1] <= 0.1
    assert all(s.status.is_ok for s in tries)


async def test_permanent_error_fails_at_once_and_is_recorded_with_masked_secrets(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession], spans: object
) -> None:
    """A ValueError is not retried; its failed-job row masks `password` and holds the trace id."""
    job = await pool.enqueue_job("test_broken", password="hunter2-secret", note="this input")
    assert job is not None
    worker = await run_burst(await make_worker(settings, [sample_jobs.broken]))
    assert (worker.jobs_failed, worker.jobs_retried) == (1, 0)
    [row] = await failed_rows(sessions)
    assert row.job_name == "test_broken" and row.queue == "jobs:queue:email"
    assert row.arguments == {"password": "***", "note": "this input"}
    assert (row.error_type, row.error_message, row.tries) == (
        "ValueError",
        "cannot handle this input",
        1,
    )
    [span] = [s for s in spans.get_finished_spans() if s.kind.name == "CONSUMER"]  # type: ignore[attr-defined]
    assert row.trace_id == f"{span.context.trace_id:032x}"
    assert span.attributes["error.type"] == "ValueError"
    assert "hunter2-secret" not in str(row.__dict__)
    info = await job.result_info()
    assert info is not None and not info.success


async def test_transient_failure_on_last_try_is_recorded_as_max_tries(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A job failing transiently on every try stops after max_tries and is recorded once."""
    await pool.enqueue_job("test_always_transient", api_token="tok-123")
    worker = await run_burst(await make_worker(settings, [sample_jobs.always_transient]))
    assert (worker.jobs_retried, worker.jobs_failed) == (1, 1)
    [row] = await failed_rows(sessions)
    assert (row.error_type, row.tries) == ("ConnectionError", 2)
    assert row.arguments == {"api_token": "***"}


async def test_interrupted_tries_beyond_max_are_recorded(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A job whose earlier tries were cut off past max_tries fails as MaxTriesExceeded."""
    raw = ArqRedis.from_url(settings.redis_url)
    raw.job_serializer = serialize
    await raw.enqueue_job(
        "test_always_transient",
        _queue_name="jobs:queue:email",
        _job_id="crashed",
        _job_try=3,
        api_token="t",
    )
    await raw.aclose()
    worker = await run_burst(await make_worker(settings, [sample_jobs.always_transient]))
    assert worker.jobs_failed == 1
    [row] = await failed_rows(sessions)
    assert (row.job_id, row.error_type, row.tries) == ("crashed", "MaxTriesExceeded", 3)


async def test_timeout_is_a_permanent_failure_when_tries_run_out(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """test_slow (timeout 0.2 s, one try) is cut off and recorded as JobTimeout."""
    await pool.enqueue_job("test_slow")
    worker = await run_burst(await make_worker(settings, [sample_jobs.slow]))
    assert worker.jobs_failed == 1
    [row] = await failed_rows(sessions)
    assert row.error_type == "JobTimeout" and "0.2s timeout" in row.error_message


async def test_headers_kwarg_never_reaches_the_job(pool: JobsPool, settings: Settings) -> None:
    """The trace headers ride in the payload but the job sees only its own arguments."""
    job = await pool.enqueue_job("test_echo", number=5)
    assert job is not None
    info = await job.info()
    assert info is not None and HEADERS_KWARG in info.kwargs
    await run_burst(await make_worker(settings, [sample_jobs.echo]))
    assert await job.result(timeout=1) == {"number": 5, "label": "x", "try": 1}


async def test_routing_by_name_options_and_unknown_names(pool: JobsPool) -> None:
    """Jobs go to their family's queue by name, keep ARQ's options, and unknown names raise."""
    from jobs import UnknownJobError

    job = await pool.enqueue_job("test_echo", number=1, _job_id="fixed", _defer_by=60)
    assert job is not None and job.job_id == "fixed"
    score = await pool.zscore("jobs:queue:email", "fixed")
    assert score is not None and score > (await pool.time())[0] * 1000 + 50_000
    assert await pool.enqueue_job("test_echo", number=2, _job_id="fixed") is None
    assert await pool.zcard("arq:queue") == 0
    with pytest.raises(UnknownJobError, match="unknown job 'send_emial'"):
        await pool.enqueue_job("send_emial", to="x@example.com")
    with pytest.raises(ValueError, match="belongs to queue 'jobs:queue:email'"):
        await pool.enqueue_job("test_echo", number=1, _queue_name="arq:queue")
