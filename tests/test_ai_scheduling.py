"""The AI task scheduler: claiming due tasks once, next runs across DST, missed slots."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import jobs.ai
from jobs import JobsPool
from jobs.ai import run_ai_task, schedule_ai_tasks
from jobs.ai.scheduling import claim_due_tasks, next_run_after
from jobs.db import AiTaskState, utcnow
from jobs.settings import Settings, load_settings
from jobs.worker import worker_options
from tests.ai_data import add_task, add_user, get_task, llm_settings, runs_of
from tests.conftest import make_worker, run_burst
from tests.llm_server import FakeLlm

UTC = dt.UTC
AI_QUEUE = "jobs:queue:ai"


def test_next_run_stays_at_local_wall_time_across_dst() -> None:
    """Weekdays 07:30 in Berlin is 06:30Z before the spring change and 05:30Z after it."""
    expression, zone = "30 7 * * 1-5", "Europe/Berlin"
    friday = next_run_after(expression, zone, dt.datetime(2026, 3, 27, 0, tzinfo=UTC))
    monday = next_run_after(expression, zone, friday)
    assert friday == dt.datetime(2026, 3, 27, 6, 30, tzinfo=UTC)
    assert monday == dt.datetime(2026, 3, 30, 5, 30, tzinfo=UTC)
    assert next_run_after(None, zone, friday) is None


async def test_missed_task_runs_once_and_next_run_counts_from_now(
    pool: JobsPool, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A ten-minute task missed for three hours is enqueued once; its next run is after now."""
    ann = await add_user(sessions, "ann@example.com")
    now = dt.datetime(2026, 3, 29, 0, 3, tzinfo=UTC)
    task_id = await add_task(
        sessions, ann, next_run_at=now - dt.timedelta(hours=3), cron="*/10 * * * *"
    )
    counts = await claim_due_tasks(sessions, pool, now=now, time_budget=5)
    assert counts.enqueued == 1 and await pool.zcard(AI_QUEUE) == 1
    assert (await get_task(sessions, task_id)).next_run_at == dt.datetime(
        2026, 3, 29, 0, 10, tzinfo=UTC
    )
    again = await claim_due_tasks(sessions, pool, now=now, time_budget=5)
    assert again.enqueued == 0 and await pool.zcard(AI_QUEUE) == 1


async def test_scheduler_pass_across_dst_change_sets_the_local_time(
    pool: JobsPool, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Claimed on Friday, a Berlin weekday 07:30 task is next due Monday 05:30Z (after DST)."""
    ann = await add_user(sessions, "ann@example.com")
    friday = dt.datetime(2026, 3, 27, 6, 30, tzinfo=UTC)
    task_id = await add_task(sessions, ann, next_run_at=friday, cron="30 7 * * 1-5")
    await claim_due_tasks(sessions, pool, now=friday + dt.timedelta(seconds=20), time_budget=5)
    assert (await get_task(sessions, task_id)).next_run_at == dt.datetime(
        2026, 3, 30, 5, 30, tzinfo=UTC
    )


async def test_two_schedulers_run_each_due_task_once(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """Two schedulers racing over 6 due tasks, then two workers, give exactly one run per task."""
    ann = await add_user(sessions, "ann@example.com")
    now = utcnow()
    task_ids = [
        await add_task(sessions, ann, next_run_at=now - dt.timedelta(minutes=i), cron="0 7 * * *")
        for i in range(6)
    ]
    first, second = await asyncio.gather(
        *(claim_due_tasks(sessions, pool, now=now, time_budget=5) for _ in range(2))
    )
    assert first.enqueued + second.enqueued == 6 and await pool.zcard(AI_QUEUE) == 6
    for _ in range(6):
        llm_server.answer("done")
    await pool.enqueue_job("schedule_ai_tasks", _job_id="scheduler-1")
    await pool.enqueue_job("schedule_ai_tasks", _job_id="scheduler-2")
    ai_settings = llm_settings(settings, llm_server)
    workers = [
        await make_worker(ai_settings, [schedule_ai_tasks, run_ai_task], family="ai")
        for _ in range(2)
    ]
    await asyncio.gather(*(run_burst(w) for w in workers))
    assert len(llm_server.requests) == 6 and llm_server.unused == 0
    for task_id in task_ids:
        [run] = await runs_of(sessions, task_id)
        assert run.status == "succeeded"
        task = await get_task(sessions, task_id)
        assert task.next_run_at is not None and task.next_run_at > now


async def test_one_off_task_is_done_after_its_run_and_bad_cron_pauses(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """A due one-off task runs once and is done; a task with cron '61 * * * *' is paused."""
    ann = await add_user(sessions, "ann@example.com")
    now = utcnow()
    once = await add_task(sessions, ann, next_run_at=now - dt.timedelta(seconds=5))
    broken = await add_task(sessions, ann, next_run_at=now, cron="61 * * * *")
    llm_server.answer("Reminder sent.")
    await pool.enqueue_job("schedule_ai_tasks")
    ai_settings = llm_settings(settings, llm_server)
    await run_burst(await make_worker(ai_settings, [schedule_ai_tasks, run_ai_task], family="ai"))
    task = await get_task(sessions, once)
    assert (task.state, task.next_run_at, task.last_result) == (
        AiTaskState.DONE,
        None,
        "Reminder sent.",
    )
    paused = await get_task(sessions, broken)
    assert paused.state is AiTaskState.PAUSED
    assert (
        paused.pause_reason
        == "invalid cron expression '61 * * * *': minute 61 is out of range 0-59"
    )


def test_scheduler_cron_entry_fires_every_minute() -> None:
    """schedule_ai_tasks is the ai family's only cron entry and fires at every minute."""
    options = worker_options(
        "ai", load_settings(), [], list(vars(jobs.ai.WorkerSettings)["_declared_crons"])
    )
    [cron] = options["cron_jobs"]
    assert cron.name == "schedule_ai_tasks"
    cron.calculate_next(dt.datetime(2026, 5, 1, 9, 58, 30, tzinfo=UTC))
    times = []
    for _ in range(3):
        times.append(cron.next_run.strftime("%H:%M:%S"))
        cron.calculate_next(cron.next_run)
    assert times == ["09:59:00", "10:00:00", "10:01:00"]
