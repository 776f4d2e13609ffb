"""The record of each run in ``ai_task_runs``, and what a finished run does to its task.

A run record is unique per task and scheduled time: it is created when the run starts, and a
job that finds it finished (after a crash, or a duplicate enqueue) reports it instead of
running the task again. Finishing is conditional on the record still being ``running``, so the
task's failure streak is counted once per run.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.ai.observability import count_pause
from jobs.ai.runner import Conversation
from jobs.db.ai_models import AiTask, AiTaskRun, AiTaskState
from jobs.db.base import utcnow
from jobs.db.models import User
from jobs.db.upsert import insert_ignoring_conflicts

__all__ = ["OpenedRun", "finish_run", "open_run", "run_summary", "save_progress"]

RESULT_CHARS = 4000


@dataclass
class OpenedRun:
    """The task, its user and the run record, or why the run is skipped."""

    task: AiTask
    user: User
    run: AiTaskRun
    skip_reason: str | None = None


async def open_run(
    sessions: async_sessionmaker[AsyncSession], task_id: int, scheduled_for: dt.datetime
) -> OpenedRun:
    """Find or create the run record of ``task_id`` at ``scheduled_for``."""
    async with sessions.begin() as session:
        task = await session.get(AiTask, task_id)
        user = await session.get(User, task.user_id) if task is not None else None
        if task is None or user is None:
            return OpenedRun(AiTask(), User(), AiTaskRun(), skip_reason="task not found")
        query = select(AiTaskRun).where(
            AiTaskRun.task_id == task_id, AiTaskRun.scheduled_for == scheduled_for
        )
        run = await session.scalar(query)
        if run is None:
            if task.state is not AiTaskState.ACTIVE:
                return OpenedRun(task, user, AiTaskRun(), skip_reason=f"task is {task.state}")
            row = {
                "task_id": task.id,
                "user_id": task.user_id,
                "scheduled_for": scheduled_for,
                "status": "running",
                "prompt": "",
                "steps": [],
                "tool_calls": [],
                "tokens_used": 0,
                "started_at": utcnow(),
            }
            name = session.bind.dialect.name
            await session.execute(insert_ignoring_conflicts(name, AiTaskRun, [row]))
            run = await session.scalar(query.execution_options(populate_existing=True))
        if run is None:  # pragma: no cover - inserted or found just above
            raise RuntimeError(f"run of task {task_id} at {scheduled_for} vanished")
        return OpenedRun(task, user, run)


def _record(
    conversation: Conversation, system: str, error: str | None, started: float
) -> dict[str, Any]:
    instruction = conversation.messages[1]["content"] if len(conversation.messages) > 1 else ""
    return {
        "prompt": f"{system}\n\n{instruction}",
        "steps": conversation.steps,
        "tool_calls": conversation.tool_calls,
        "tokens_used": conversation.tokens,
        "duration_ms": round((time.perf_counter() - started) * 1000),
        "error": error,
    }


async def save_progress(
    sessions: async_sessionmaker[AsyncSession],
    run_id: int,
    conversation: Conversation,
    system: str,
    error: str,
    started: float,
) -> None:
    """Record how far a run got before a transient failure; it stays ``running``."""
    async with sessions.begin() as session:
        await session.execute(
            update(AiTaskRun)
            .where(AiTaskRun.id == run_id, AiTaskRun.status == "running")
            .values(**_record(conversation, system, f"{error} (will be retried)", started))
        )


async def finish_run(
    sessions: async_sessionmaker[AsyncSession],
    run_id: int,
    conversation: Conversation,
    system: str,
    *,
    answer: str | None,
    error: str | None,
    started: float,
    max_failures: int,
) -> AiTaskRun:
    """Record the run's outcome once, and update its task's result, streak and state."""
    now = utcnow()
    async with sessions.begin() as session:
        finished = await session.execute(
            update(AiTaskRun)
            .where(AiTaskRun.id == run_id, AiTaskRun.status == "running")
            .values(
                status="failed" if error else "succeeded",
                answer=answer,
                finished_at=now,
                **_record(conversation, system, error, started),
            )
        )
        run = await session.get(AiTaskRun, run_id, populate_existing=True)
        if run is None:  # pragma: no cover - the task (and its runs) was deleted meanwhile
            raise RuntimeError(f"run {run_id} vanished")
        task = await session.get(AiTask, run.task_id, with_for_update=True)
        if finished.rowcount == 1 and task is not None:  # type: ignore[attr-defined]
            _update_task(task, run.scheduled_for, answer, error, now, max_failures)
    return run


def _update_task(
    task: AiTask,
    scheduled_for: dt.datetime,
    answer: str | None,
    error: str | None,
    now: dt.datetime,
    max_failures: int,
) -> None:
    task.last_run_at = now
    if error is None:
        task.failures_in_row = 0
        task.last_result = (answer or "")[:RESULT_CHARS]
    else:
        task.failures_in_row += 1
        task.last_result = f"error: {error}"[:RESULT_CHARS]
    if task.state is not AiTaskState.ACTIVE:
        return
    one_off_over = task.cron_expression is None and (
        task.next_run_at is None or task.next_run_at <= scheduled_for
    )  # unless the run itself moved the one-off task to a later time
    if one_off_over:
        task.state = AiTaskState.DONE if error is None else AiTaskState.FAILED
        task.next_run_at = None
    elif error is not None and task.failures_in_row >= max_failures:
        task.state = AiTaskState.PAUSED
        task.next_run_at = None
        task.pause_reason = f"{task.failures_in_row} failed runs in a row; last: {error}"[
            :RESULT_CHARS
        ]
        count_pause("failures")


def run_summary(run: AiTaskRun) -> dict[str, Any]:
    """A run as the job's result (no prompt or tool results: they stay in the table)."""
    return {
        "task_id": run.task_id,
        "run_id": run.id,
        "scheduled_for": run.scheduled_for.isoformat(),
        "status": run.status,
        "answer": run.answer,
        "error": run.error,
        "steps": len(run.steps),
        "tool_calls": len(run.tool_calls),
        "tokens_used": run.tokens_used,
        "duration_ms": run.duration_ms,
    }
