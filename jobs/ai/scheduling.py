"""When AI tasks run: next-run computation and claiming due tasks exactly once.

A due task is claimed with a conditional ``UPDATE … SET next_run_at = <next> WHERE id = … AND
next_run_at = <the value read>``: of two schedulers reading the same due task, only one
advances it. Its ``run_ai_task`` job is enqueued inside the same transaction with a job id made
of the task and the scheduled time, so even a claim repeated after a crash enqueues nothing
twice. The next run is computed from *now*, not from the missed slot: a task missed while the
workers were down runs once, not once per missed slot.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import JobsPool
from jobs.db.ai_models import AiTask, AiTaskState
from jobs.schedule import Schedule, ScheduleError

__all__ = ["SchedulerCounts", "claim_due_tasks", "next_run_after", "run_job_id"]

CLAIM_BATCH = 100


def next_run_after(
    cron_expression: str | None, timezone: str, after: dt.datetime
) -> dt.datetime | None:
    """The next run strictly after ``after`` (UTC), or None for a one-off task.

    Raises :class:`jobs.schedule.ScheduleError` for an invalid expression or time zone.
    """
    if cron_expression is None:
        return None
    return Schedule.parse(cron_expression, timezone).next_after(after)


def run_job_id(task_id: int, scheduled_for: dt.datetime) -> str:
    """The ARQ job id of one scheduled run: unique per task and scheduled time."""
    return f"ai-task:{task_id}:{int(scheduled_for.timestamp())}"


@dataclass
class SchedulerCounts:
    """What one scheduler pass did."""

    enqueued: int = 0
    claimed_elsewhere: int = 0
    paused: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as the job's result."""
        return {
            "enqueued": self.enqueued,
            "claimed_elsewhere": self.claimed_elsewhere,
            "paused": self.paused,
        }


async def _claim(
    session: AsyncSession, pool: JobsPool, task: AiTask, now: dt.datetime, counts: SchedulerCounts
) -> None:
    scheduled_for = task.next_run_at
    if scheduled_for is None:  # pragma: no cover - selected with next_run_at <= now
        return
    try:
        following = next_run_after(task.cron_expression, task.timezone, now)
    except ScheduleError as error:
        await session.execute(
            update(AiTask)
            .where(AiTask.id == task.id, AiTask.next_run_at == scheduled_for)
            .values(state=AiTaskState.PAUSED, next_run_at=None, pause_reason=str(error))
        )
        counts.paused += 1
        return
    claimed = await session.execute(
        update(AiTask)
        .where(
            AiTask.id == task.id,
            AiTask.state == AiTaskState.ACTIVE,
            AiTask.next_run_at == scheduled_for,
        )
        .values(next_run_at=following)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        counts.claimed_elsewhere += 1
        return
    job = await pool.enqueue_job(
        "run_ai_task",
        task_id=task.id,
        scheduled_for=scheduled_for,
        _job_id=run_job_id(task.id, scheduled_for),
    )
    if job is None:
        counts.claimed_elsewhere += 1
    else:
        counts.enqueued += 1


async def claim_due_tasks(
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    *,
    now: dt.datetime,
    time_budget: float,
) -> SchedulerCounts:
    """Claim every active task due at ``now`` and enqueue one ``run_ai_task`` for each."""
    counts = SchedulerCounts()
    started = time.monotonic()
    while time.monotonic() - started < time_budget:
        async with sessions() as session:
            due = list(
                await session.scalars(
                    select(AiTask)
                    .where(AiTask.state == AiTaskState.ACTIVE, AiTask.next_run_at <= now)
                    .order_by(AiTask.next_run_at, AiTask.id)
                    .limit(CLAIM_BATCH)
                )
            )
        for task in due:
            async with sessions.begin() as session:
                await _claim(session, pool, task, now, counts)
        if len(due) < CLAIM_BATCH:
            break
    return counts
