"""The wake-up signal: idle workers start jobs when producers signal, not when a poll comes round.

Every worker here has a long fallback poll (``FALLBACK`` seconds) so that a job that starts
well before it can only have been started by the signal, by a due time, or by a freed slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import arq
import arq.connections
import arq.utils
import arq.worker
import pytest
from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss
from arq.utils import timestamp_ms

from jobs import JobsPool
from jobs.constants import queue_name, wake_key
from jobs.queue_scripts import WAKE_CAP
from jobs.serializer import serialize
from jobs.settings import Settings
from jobs.worker import Cron
from jobs.worker_loop import JobsWorker
from tests import sample_jobs
from tests.conftest import make_worker, run_burst

pytestmark = pytest.mark.usefixtures("engine")

FALLBACK = 5.0
QUEUE = queue_name("email")


@asynccontextmanager
async def running(worker: arq.worker.Worker) -> AsyncIterator[JobsWorker]:
    """Run ``worker`` (built as ARQ builds it) in the background until the block ends."""
    task = asyncio.create_task(worker.async_run())
    deadline = time.monotonic() + 10
    while not isinstance(worker, JobsWorker) or worker._listener is None:
        assert not task.done(), task
        assert time.monotonic() < deadline, "the worker never became idle"
        await asyncio.sleep(0.01)
    try:
        yield worker
        deadline = time.monotonic() + 10
        while worker.job_counter:  # let running jobs finish: ARQ's close() cancels them
            assert time.monotonic() < deadline, "jobs still running"
            await asyncio.sleep(0.01)
    finally:
        await worker.close()
        await asyncio.gather(task, return_exceptions=True)


async def started_at(pool: JobsPool, count: int, within: float) -> list[float]:
    """The start times of the first ``count`` stamp jobs, waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while len(starts := await pool.lrange("started", 0, -1)) < count:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    return [float(t) for t in starts]


async def test_enqueued_job_wakes_an_idle_worker_long_before_the_fallback_poll(
    settings: Settings, pool: JobsPool
) -> None:
    """A job enqueued through the client to an idle worker (fallback 5 s) starts within 1.5 s."""
    worker = await make_worker(settings, [sample_jobs.stamp], burst=False, poll_delay=FALLBACK)
    async with running(worker):
        for _ in range(3):
            await asyncio.sleep(0.3)
            sent = time.time()
            await pool.enqueue_job("test_stamp")
            starts = await started_at(pool, 1, FALLBACK * 2)
            assert starts, "the job never started"
            assert starts[-1] - sent < 1.5, starts[-1] - sent
            await pool.delete("started")
    assert isinstance(worker, JobsWorker) and worker.jobs_complete == 3


async def test_deferred_job_runs_when_due(settings: Settings, pool: JobsPool) -> None:
    """A job deferred by 1 s to an idle worker (fallback 5 s) starts between 1 s and 2.5 s."""
    worker = await make_worker(settings, [sample_jobs.stamp], burst=False, poll_delay=FALLBACK)
    async with running(worker):
        sent = time.time()
        await pool.enqueue_job("test_stamp", _defer_by=1.0)
        [start] = await started_at(pool, 1, FALLBACK * 2)
    assert 0.95 <= start - sent < 2.5, start - sent


async def test_producer_bypassing_the_client_is_found_by_the_fallback_poll(
    settings: Settings, pool: JobsPool
) -> None:
    """A job written by plain ARQ (no signal) starts at the next fallback poll (0.5 s here)."""
    worker = await make_worker(settings, [sample_jobs.stamp], burst=False, poll_delay=0.5)
    async with running(worker):
        raw = ArqRedis.from_url(settings.redis_url)
        raw.job_serializer = serialize
        await raw.enqueue_job("test_stamp", _queue_name=QUEUE)
        await raw.aclose()
        assert await pool.llen(wake_key(QUEUE)) == 0
        assert await started_at(pool, 1, 5.0), "the fallback poll never found the job"


async def test_freed_slot_is_refilled_at_once_while_jobs_wait(
    settings: Settings, pool: JobsPool
) -> None:
    """Two slots, eight 0.2 s jobs and a 5 s fallback: all eight start within about 0.8 s."""
    worker = await make_worker(
        settings, [sample_jobs.stamp], burst=False, poll_delay=FALLBACK, max_jobs=2
    )
    async with running(worker):
        for _ in range(8):
            await pool.enqueue_job("test_stamp", seconds=0.2)
        starts = await started_at(pool, 8, FALLBACK * 3)
    assert len(starts) == 8
    assert max(starts) - min(starts) < 2.5, starts


async def test_retry_without_delay_runs_again_before_the_fallback(
    settings: Settings, pool: JobsPool
) -> None:
    """A job retried with a short backoff is tried again at once, not at the next fallback poll."""
    worker = await make_worker(settings, [sample_jobs.flaky], burst=False, poll_delay=FALLBACK)
    async with running(worker):
        started = time.monotonic()
        job = await pool.enqueue_job("test_flaky", failures=2)
        assert job is not None
        assert await job.result(timeout=FALLBACK * 3, poll_delay=0.05) == "done"
    assert time.monotonic() - started < FALLBACK - 1
    assert (worker.jobs_retried, worker.jobs_complete) == (2, 1)


async def test_cron_runs_on_time_with_a_long_fallback(settings: Settings, pool: JobsPool) -> None:
    """A 2-second schedule under a 5 s fallback fires every run, each within 0.5 s of its time."""
    crons = [Cron(sample_jobs.cron_stamp, "* * * * *", second="*/2")]
    worker = await make_worker(settings, [], crons=crons, burst=False, poll_delay=FALLBACK)
    async with running(worker):
        await asyncio.sleep(5.2)
        runs = [r.decode() for r in await pool.lrange("cron_runs", 0, -1)]
    assert len(runs) >= 2, runs
    for run in runs:
        job_id, started = run.split("@")
        scheduled = int(job_id.rsplit(":", 1)[1]) / 1000
        assert 0 <= float(started) - scheduled < 0.5, run


async def test_abort_still_cancels_a_running_job(settings: Settings, pool: JobsPool) -> None:
    """ARQ's abort reaches a running job within a fallback poll (0.3 s here) and cancels it."""
    worker = await make_worker(
        settings, [sample_jobs.stamp], burst=False, poll_delay=0.3, allow_abort_jobs=True
    )
    async with running(worker):
        job = await pool.enqueue_job("test_stamp", seconds=30)
        assert job is not None
        await started_at(pool, 1, 5.0)
        await pool.zadd(abort_jobs_ss, {job.job_id: timestamp_ms()})  # what Job.abort writes
        deadline = time.monotonic() + 5
        while (info := await job.result_info()) is None:
            assert time.monotonic() < deadline, "the abort never reached the job"
            await asyncio.sleep(0.05)
    assert info is not None and not info.success
    assert info.result == {"error": "CancelledError", "message": ""}
    assert worker.jobs_failed == 1


async def test_an_idle_worker_does_not_read_the_abort_set(
    settings: Settings, pool: JobsPool
) -> None:
    """With no job running, polls skip ARQ's abort check, which would prune this far-off entry."""
    far_off = timestamp_ms() + 10 * 24 * 3600 * 1000
    await pool.zadd(abort_jobs_ss, {"no-such-job": far_off})
    worker = await make_worker(
        settings, [sample_jobs.stamp], burst=False, poll_delay=0.05, allow_abort_jobs=True
    )
    async with running(worker):
        await asyncio.sleep(1.0)  # some twenty fallback polls
        assert await pool.zscore(abort_jobs_ss, "no-such-job") == far_off
        job = await pool.enqueue_job("test_stamp", seconds=2)
        assert job is not None
        await started_at(pool, 1, 5.0)
        deadline = time.monotonic() + 5
        while await pool.zscore(abort_jobs_ss, "no-such-job") is not None:
            assert time.monotonic() < deadline, "a running job's worker never checked for aborts"
            await asyncio.sleep(0.05)


async def test_burst_worker_drains_and_stops_and_health_check_passes(
    settings: Settings, pool: JobsPool
) -> None:
    """In burst mode the worker runs every queued job, stops, and ARQ's health check saw it."""
    for number in range(5):
        await pool.enqueue_job("test_echo", number=number)
    worker = await make_worker(settings, [sample_jobs.echo], poll_delay=FALLBACK)
    started = time.monotonic()
    await run_burst(worker)
    assert worker.jobs_complete == 5
    assert time.monotonic() - started < FALLBACK
    assert await pool.zcard(QUEUE) == 0


async def test_health_record_is_written_by_the_woken_worker(
    settings: Settings, pool: JobsPool
) -> None:
    """ARQ's health record (read by `arq --check`) is written by a JobsWorker."""
    worker = await make_worker(settings, [sample_jobs.echo], burst=False, poll_delay=FALLBACK)
    async with running(worker):
        record = await pool.get(f"{QUEUE}:health-check")
    assert record is not None and b"j_complete=0" in record


async def test_wake_up_list_stays_bounded_without_workers(pool: JobsPool) -> None:
    """Enqueueing 300 jobs with no worker running leaves at most 2 x WAKE_CAP signals behind."""
    for number in range(300):
        await pool.enqueue_job("test_echo", number=number)
        assert await pool.llen(wake_key(QUEUE)) <= 2 * WAKE_CAP
    assert await pool.zcard(QUEUE) == 300


async def test_duplicate_job_id_is_refused_without_a_signal(pool: JobsPool) -> None:
    """A second enqueue with the same job id returns None and adds neither job nor signal."""
    assert await pool.enqueue_job("test_echo", number=1, _job_id="same") is not None
    assert await pool.enqueue_job("test_echo", number=2, _job_id="same") is None
    assert await pool.zcard(QUEUE) == 1
    assert await pool.llen(wake_key(QUEUE)) == 1


#: ARQ code the worker loop and the client replace or build on; a new ARQ must be read again.
ARQ_SEAMS = {
    "arq.worker.Worker.main": arq.worker.Worker.main,
    "arq.worker.Worker._poll_iteration": arq.worker.Worker._poll_iteration,
    "arq.worker.Worker.start_jobs": arq.worker.Worker.start_jobs,
    "arq.worker.Worker.run_job": arq.worker.Worker.run_job,
    "arq.worker.Worker.finish_job": arq.worker.Worker.finish_job,
    "arq.worker.Worker.heart_beat": arq.worker.Worker.heart_beat,
    "arq.worker.Worker.close": arq.worker.Worker.close,
    "arq.connections.ArqRedis.enqueue_job": arq.connections.ArqRedis.enqueue_job,
    "arq.utils.poll": arq.utils.poll,
}
ARQ_SEAM_DIGESTS = {
    "arq.worker.Worker.main": "45ca1591c9717466",
    "arq.worker.Worker._poll_iteration": "f8d39d823a0a59f2",
    "arq.worker.Worker.start_jobs": "b45797cfa40bed7f",
    "arq.worker.Worker.run_job": "589a19059ff84ee7",
    "arq.worker.Worker.finish_job": "903f09c92830d3fd",
    "arq.worker.Worker.heart_beat": "2e9959bea66dc551",
    "arq.worker.Worker.close": "5bcc9cb356680829",
    "arq.connections.ArqRedis.enqueue_job": "7da8706a747c1171",
    "arq.utils.poll": "d8cc8542a1ab2bc3",
}


def test_arq_version_and_the_code_the_worker_loop_relies_on_are_unchanged() -> None:
    """ARQ is 0.28.0 and the methods jobs.worker_loop replaces or relies on read as reviewed."""
    assert arq.VERSION == "0.28.0"
    digests = {
        name: hashlib.sha256(inspect.getsource(code).encode()).hexdigest()[:16]
        for name, code in ARQ_SEAMS.items()
    }
    assert digests == ARQ_SEAM_DIGESTS, "ARQ changed: review jobs/worker_loop.py and client.py"
