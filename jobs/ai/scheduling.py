"""When AI tasks run: their next run, claiming due tasks once, and tasks left without a run.

A due task is claimed with a conditional ``UPDATE … SET next_run_at = <next> WHERE id = … AND
next_run_at = <the value read>``: of two schedulers reading the same due task, only one
advances it. Its ``run_ai_task`` job is enqueued inside the same transaction with a job id made
of the task and the scheduled time, so even a claim repeated after a crash enqueues nothing
twice. The next run is computed from *now*, not from the missed slot: a task missed while the
workers were down runs once, not once per missed slot.

Whoever creates or changes a task sets its ``next_run_at`` with :func:`next_run_of`. An active
task left without one would never run, so each pass first gives such tasks their next run
(a one-off whose time has passed is enqueued at once), pauses those whose schedule is invalid
or missing, logs a warning for each and counts them as ``unscheduled``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import JobsPool
from jobs.db.ai_models import AiTask, AiTaskState
from jobs.schedule import Schedule, ScheduleError

__all__ = ["SchedulerCounts", "claim_due_tasks", "next_run_after", "next_run_of", "run_job_id"]

logger = logging.getLogger(__name__)

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


def next_run_of(task: AiTask, now: dt.datetime) -> dt.datetime:
    """When ``task`` should run next, from its schedule: what ``next_run_at`` must be set to.

    A recurring task runs at the next time its ``cron_expression`` (read in the task's
    ``timezone``, DST-correct) matches after ``now``; a one-off task at its ``run_at`` (a naive
    ``run_at`` is read in the task's zone), which may have passed — then it is due at once. Call
    it whenever a task is created or its schedule changes. Raises
    :class:`jobs.schedule.ScheduleError` for a task with neither, an invalid expression or zone.
    """
    if task.cron_expression is not None:
        return Schedule.parse(task.cron_expression, task.timezone).next_after(now)
    if task.run_at is None:
        raise ScheduleError("the task has neither run_at nor cron_expression")
    if task.run_at.tzinfo is not None:
        return task.run_at.astimezone(dt.UTC)
    try:
        zone = ZoneInfo(task.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {task.timezone!r}") from None
    return task.run_at.replace(tzinfo=zone).astimezone(dt.UTC)


def run_job_id(task_id: int, scheduled_for: dt.datetime) -> str:
    """The ARQ job id of one scheduled run: unique per task and scheduled time."""
    return f"ai-task:{task_id}:{int(scheduled_for.timestamp())}"


@dataclass
class SchedulerCounts:
    """What one scheduler pass did."""

    enqueued: int = 0
    claimed_elsewhere: int = 0
    paused: int = 0
    #: Active tasks found without a next run (and scheduled, enqueued or paused).
    unscheduled: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as the job's result."""
        return {
            "enqueued": self.enqueued,
            "claimed_elsewhere": self.claimed_elsewhere,
            "paused": self.paused,
            "unscheduled": self.unscheduled,
        }


async def _enqueue_run(pool: JobsPool, task_id: int, scheduled_for: dt.datetime) -> bool:
    """Enqueue the run of ``task_id`` at ``scheduled_for``; False if that run is already known."""
    job = await pool.enqueue_job(
        "run_ai_task",
        task_id=task_id,
        scheduled_for=scheduled_for,
        _job_id=run_job_id(task_id, scheduled_for),
    )
    return job is not None


async def _schedule(
    session: AsyncSession, pool: JobsPool, task: AiTask, now: dt.datetime, counts: SchedulerCounts
) -> None:
    """Give an active task without ``next_run_at`` its next run, or pause it."""
    unscheduled = (
        (AiTask.id == task.id) & (AiTask.state == AiTaskState.ACTIVE) & AiTask.next_run_at.is_(None)
    )
    try:
        following = next_run_of(task, now)
    except ScheduleError as error:
        changed = await session.execute(
            update(AiTask)
            .where(unscheduled)
            .values(state=AiTaskState.PAUSED, pause_reason=f"cannot be scheduled: {error}")
        )
        if changed.rowcount == 1:  # type: ignore[attr-defined]
            counts.unscheduled += 1
            counts.paused += 1
            logger.warning("AI task %s had no next_run_at and is paused: %s", task.id, error)
        return
    if following <= now:
        # a one-off whose time has passed runs now, like a claimed one: its next_run_at stays
        # NULL while it runs, and the job id makes sure it is enqueued once
        if not await _enqueue_run(pool, task.id, following):
            return  # claimed earlier and still queued or running: nothing was missing
        counts.enqueued += 1
    else:
        changed = await session.execute(
            update(AiTask).where(unscheduled).values(next_run_at=following)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            return
    counts.unscheduled += 1
    logger.warning("AI task %s had no next_run_at; next run %s", task.id, following.isoformat())


async def _schedule_unscheduled(
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    now: dt.datetime,
    counts: SchedulerCounts,
    deadline: float,
) -> None:
    last_id = 0
    while time.monotonic() < deadline:
        async with sessions() as session:
            tasks = list(
                await session.scalars(
                    select(AiTask)
                    .where(
                        AiTask.state == AiTaskState.ACTIVE,
                        AiTask.next_run_at.is_(None),
                        AiTask.id > last_id,
                    )
                    .order_by(AiTask.id)
                    .limit(CLAIM_BATCH)
                )
            )
        for task in tasks:
            async with sessions.begin() as session:
                await _schedule(session, pool, task, now, counts)
        if len(tasks) < CLAIM_BATCH:
            return
        last_id = tasks[-1].id


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
    if await _enqueue_run(pool, task.id, scheduled_for):
        counts.enqueued += 1
    else:
        counts.claimed_elsewhere += 1


async def claim_due_tasks(
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    *,
    now: dt.datetime,
    time_budget: float,
) -> SchedulerCounts:
    """Claim every active task due at ``now`` and enqueue one ``run_ai_task`` for each.

    Active tasks without a next run are scheduled (or paused) first.
    """
    counts = SchedulerCounts()
    started = time.monotonic()
    await _schedule_unscheduled(sessions, pool, now, counts, started + time_budget / 2)
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
