"""The dashboard's readers: finished tries per minute, queue pages by rank, one job's detail."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import JobsPool
from jobs.dashboard.job_reader import read_job
from jobs.dashboard.overview_data import read_overview
from jobs.dashboard.queue_reader import read_queue_page
from jobs.redaction import Redactor
from jobs.settings import Settings
from jobs.throughput import finished_key, finished_since
from tests.conftest import make_worker, run_burst
from tests.sample_jobs import broken, echo

pytestmark = pytest.mark.usefixtures("engine")


async def test_a_worker_counts_its_finished_tries_for_the_overview(
    settings: Settings, pool: JobsPool, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Three jobs that succeed and one that fails show as completed 3 and failed 1 this hour."""
    for number in range(3):
        await pool.enqueue_job("test_echo", number=number)
    await pool.enqueue_job("test_broken", password="pw", note="n")
    await run_burst(await make_worker(settings, [echo, broken]))
    finished = (await finished_since(pool, ["email", "files"], 60))["email"]
    assert (finished.success, finished.failure) == (3, 1)
    assert (await finished_since(pool, ["files"], 60))["files"].success == 0
    overview = await read_overview(pool, sessions)
    email = overview.families[0]
    assert (email.family, email.completed_1h, email.failed_1h) == ("email", 3, 1)
    assert email.per_minute == pytest.approx(4 / 5)


async def test_counts_from_redis_that_are_not_numbers_count_as_zero(pool: JobsPool) -> None:
    """A minute hash holding text instead of a count is read as 0, not an error."""
    import time

    await pool.hset(finished_key("email", int(time.time() // 60)), mapping={"success": "lots"})
    assert (await finished_since(pool, ["email"], 60))["email"].success == 0


async def test_queue_pages_are_read_by_rank_queued_before_deferred(
    settings: Settings, pool: JobsPool
) -> None:
    """120 due and 7 deferred jobs: due pages of 50/50/20, the deferred page holds only those 7."""
    for number in range(120):
        await pool.enqueue_job("test_echo", number=number, _job_id=f"due-{number:03d}")
    for number in range(7):
        await pool.enqueue_job(
            "test_echo", number=number, _defer_by=3600, _job_id=f"later-{number}"
        )
    redact = Redactor(settings)
    pages = [await read_queue_page(pool, "email", "queued", page, redact) for page in range(3)]
    assert [len(page.jobs) for page in pages] == [50, 50, 20]
    assert pages[0].total == 120 and pages[0].pages == 3
    assert pages[0].jobs[0].job_id == "due-000" and pages[2].jobs[-1].job_id == "due-119"
    assert pages[1].jobs[0].arguments == {"number": 50, "label": "x"}
    deferred = await read_queue_page(pool, "email", "deferred", 0, redact)
    assert deferred.total == 7
    assert [job.job_id for job in deferred.jobs] == [f"later-{n}" for n in range(7)]
    assert all(job.trace_id is None or len(job.trace_id) == 32 for job in deferred.jobs)
    beyond = await read_queue_page(pool, "email", "deferred", 5, redact)
    assert beyond.jobs == [] and beyond.total == 7


async def test_an_unreadable_queue_entry_is_shown_with_its_problem(
    settings: Settings, pool: JobsPool
) -> None:
    """A payload that is not the runtime's msgpack shows as a problem, and the page still loads."""
    import time

    await pool.zadd("jobs:queue:email", {"junk-1": time.time() * 1000})
    await pool.set("arq:job:junk-1", b"\x80\x04not msgpack")
    await pool.enqueue_job("test_echo", number=1, _job_id="fine-1")
    page = await read_queue_page(pool, "email", "queued", 0, Redactor(settings))
    problems = {job.job_id: job.problem for job in page.jobs}
    assert problems["fine-1"] is None
    assert problems["junk-1"] is not None and "payload" in problems["junk-1"]


async def test_a_job_detail_has_status_arguments_and_after_running_the_result(
    settings: Settings, pool: JobsPool, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Queued: status and masked arguments; after the worker: complete, timings and result."""
    job = await pool.enqueue_job("test_echo", number=7, label="seven")
    assert job is not None
    redact = Redactor(settings)
    queued = await read_job(pool, sessions, job.job_id, redact)
    assert (queued.status, queued.name, queued.arguments) == (
        "queued",
        "test_echo",
        {"number": 7, "label": "seven"},
    )
    assert queued.trace_id is not None and len(queued.trace_id) == 32
    assert queued.abortable
    await run_burst(await make_worker(settings, [echo]))
    done = await read_job(pool, sessions, job.job_id, redact)
    assert done.status == "succeeded" and not done.abortable
    assert done.duration_s is not None and done.duration_s >= 0
    assert done.result is not None and '"label": "seven"' in done.result
    missing = await read_job(pool, sessions, "no-such-job", redact)
    assert not missing.found


async def test_a_family_of_the_backends_own_has_its_row_and_queue(
    settings: Settings, pool: JobsPool, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The backend's ``reports`` family shows on the overview and its queued job on its page."""
    from examples.backend import reports

    await pool.enqueue_job("usage_report", user_id=5, _job_id="report-5")
    overview = await read_overview(pool, sessions)
    assert [(row.family, row.queued) for row in overview.families][-1] == (reports.REPORTS, 1)
    page = await read_queue_page(pool, reports.REPORTS, "queued", 0, Redactor(settings))
    assert [(job.job_id, job.name, job.arguments) for job in page.jobs] == [
        ("report-5", "usage_report", {"user_id": 5, "webhook_url": None})
    ]
