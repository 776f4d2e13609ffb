"""A user's AI tasks: create, change, pause, resume and delete, in the caller's transaction.

Every schedule is validated (a one-off ``run_at``, aware, or a 5-field ``cron_expression`` read
in ``timezone``) and ``next_run_at`` is computed with :func:`jobs.ai.scheduling.next_run_of`,
so the scheduler (every minute) picks the task up; nothing is enqueued. A task of another user
is :class:`NotFoundError`. A run already started when its task is paused or deleted finishes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, PositiveInt, model_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.ai.scheduling import next_run_of
from jobs.api.errors import InvalidInputError, NotFoundError
from jobs.api.ownership import lock_owned
from jobs.api.validation import ApiModel, checked
from jobs.db.ai_models import AiTask, AiTaskRun, AiTaskState
from jobs.db.base import utcnow
from jobs.db.engine import bind_session
from jobs.db.upsert import insert_ignoring_conflicts
from jobs.schedule import Schedule, ScheduleError
from jobs.settings import Settings

__all__ = [
    "AiTaskChanges",
    "AiTaskInfo",
    "NewAiTask",
    "create_ai_task",
    "delete_ai_task",
    "pause_ai_task",
    "resume_ai_task",
    "update_ai_task",
]

Title = Annotated[str, Field(max_length=200)]
Instruction = Annotated[str, Field(min_length=1, max_length=20_000)]
Expression = Annotated[str, Field(min_length=1, max_length=120)]
Zone = Annotated[str, Field(min_length=1, max_length=64)]
#: Why a task paused through the API is paused.
PAUSED_BY_USER = "paused by the user"


def _check_schedule(run_at: Any, expression: str | None, zone: str | None) -> None:
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {zone!r} (e.g. 'Europe/Berlin')") from None
    if expression is not None:
        try:
            Schedule.parse(expression, zone or "UTC")
        except ScheduleError as error:
            raise ValueError(f"cron_expression: {error}") from None


class NewAiTask(ApiModel):
    """A task to create: an instruction with exactly one of ``run_at`` and ``cron_expression``."""

    user_id: PositiveInt
    instruction: Instruction
    title: Title = ""
    run_at: AwareDatetime | None = None
    cron_expression: Expression | None = None
    timezone: Zone = "UTC"
    #: Creating twice with the same key (a retried request) creates one task.
    idempotency_key: Annotated[str, Field(min_length=1, max_length=150)] | None = None

    @model_validator(mode="after")
    def _one_schedule(self) -> NewAiTask:
        if (self.run_at is None) == (self.cron_expression is None):
            raise ValueError("give exactly one of run_at and cron_expression")
        _check_schedule(self.run_at, self.cron_expression, self.timezone)
        return self


class AiTaskChanges(ApiModel):
    """What to change in a task; fields left out stay. A new schedule replaces the old one."""

    title: Title | None = None
    instruction: Instruction | None = None
    run_at: AwareDatetime | None = None
    cron_expression: Expression | None = None
    timezone: Zone | None = None

    @model_validator(mode="after")
    def _at_most_one_schedule(self) -> AiTaskChanges:
        if self.run_at is not None and self.cron_expression is not None:
            raise ValueError("give at most one of run_at and cron_expression")
        _check_schedule(self.run_at, self.cron_expression, self.timezone)
        return self


@dataclass(frozen=True)
class AiTaskInfo:
    """A task as the API returns it."""

    id: int
    user_id: int
    title: str
    instruction: str
    state: str
    run_at: dt.datetime | None
    cron_expression: str | None
    timezone: str
    next_run_at: dt.datetime | None
    pause_reason: str | None

    @classmethod
    def of(cls, task: AiTask) -> AiTaskInfo:
        """The info of a task row."""
        return cls(
            task.id,
            task.user_id,
            task.title,
            task.instruction,
            AiTaskState(task.state).value,
            task.run_at,
            task.cron_expression,
            task.timezone,
            task.next_run_at,
            task.pause_reason,
        )


def _scheduled(task: AiTask, now: dt.datetime) -> None:
    try:
        task.next_run_at = next_run_of(task, now)
    except ScheduleError as error:  # the models checked it; a schedule that never fires
        raise InvalidInputError([{"loc": ("cron_expression",), "msg": str(error)}]) from None


async def _own_task(session: AsyncSession, user_id: int, task_id: int) -> AiTask:
    task = await session.get(AiTask, task_id, with_for_update=True)
    if task is None or task.user_id != user_id:
        raise NotFoundError(f"AI task {task_id} of user {user_id}")
    return task


async def create_ai_task(
    session: AsyncSession, *, settings: Settings | None = None, **fields: Any
) -> tuple[AiTaskInfo, bool]:
    """Create a task from :class:`NewAiTask`'s fields; the task and whether it is new.

    With ``idempotency_key``, a second call with the same key and user returns the first task.
    """
    new = checked(NewAiTask, fields)
    await bind_session(session, settings)
    now = utcnow()
    task = AiTask(
        user_id=new.user_id,
        title=new.title,
        instruction=new.instruction,
        run_at=new.run_at,
        cron_expression=new.cron_expression,
        timezone=new.timezone,
        state=AiTaskState.ACTIVE,
        failures_in_row=0,
        created_at=now,
        updated_at=now,
    )
    _scheduled(task, now)
    if new.idempotency_key is None:
        session.add(task)
        await session.flush()
        return AiTaskInfo.of(task), True
    key = f"api:{new.user_id}:{new.idempotency_key}"
    row = {c.key: getattr(task, c.key) for c in AiTask.__table__.columns if c.key != "id"}
    inserted = await session.execute(
        insert_ignoring_conflicts(session.bind.dialect.name, AiTask, [{**row, "origin_key": key}])
    )
    stored = await session.scalar(select(AiTask).where(AiTask.origin_key == key))
    assert stored is not None
    return AiTaskInfo.of(stored), bool(inserted.rowcount)  # type: ignore[attr-defined]


def _check_run_again(task: AiTask, wanted: AiTaskChanges) -> None:
    """A finished one-off runs again only at a new time (a run of that time exists already)."""
    if task.state not in (AiTaskState.DONE, AiTaskState.FAILED) or task.cron_expression:
        return
    if wanted.cron_expression or not wanted.model_fields_set & {"run_at", "timezone"}:
        return
    if wanted.run_at is None or wanted.run_at.astimezone(dt.UTC) == next_run_of(task, utcnow()):
        message = f"the task is {task.state.value}; give it a new run_at to run it again"
        raise InvalidInputError([{"loc": ("run_at",), "msg": message}])


async def update_ai_task(
    session: AsyncSession,
    *,
    user_id: int,
    task_id: int,
    settings: Settings | None = None,
    **changes: Any,
) -> AiTaskInfo:
    """Change a task (:class:`AiTaskChanges`); a new schedule recomputes ``next_run_at``.

    A done or failed task given a new schedule is active again; a finished one-off needs a new
    ``run_at`` for that (its old time has had its run), else :class:`InvalidInputError`.
    """
    wanted = checked(AiTaskChanges, changes)
    await bind_session(session, settings)
    task = await _own_task(session, user_id, task_id)
    _check_run_again(task, wanted)
    for name in ("title", "instruction"):
        if getattr(wanted, name) is not None:
            setattr(task, name, getattr(wanted, name))
    if wanted.run_at is not None:
        task.run_at, task.cron_expression = wanted.run_at, None
    if wanted.cron_expression is not None:
        task.run_at, task.cron_expression = None, wanted.cron_expression
    if wanted.timezone is not None:
        task.timezone = wanted.timezone
    if wanted.model_fields_set & {"run_at", "cron_expression", "timezone"}:
        _check_schedule(None, task.cron_expression, task.timezone)
        _scheduled(task, utcnow())
        if task.state in (AiTaskState.DONE, AiTaskState.FAILED):
            task.state, task.failures_in_row, task.pause_reason = AiTaskState.ACTIVE, 0, None
    task.updated_at = utcnow()
    await session.flush()
    return AiTaskInfo.of(task)


async def pause_ai_task(
    session: AsyncSession, *, user_id: int, task_id: int, settings: Settings | None = None
) -> AiTaskInfo:
    """Stop a task from running until it is resumed (pausing twice changes nothing)."""
    await bind_session(session, settings)
    task = await _own_task(session, user_id, task_id)
    if task.state in (AiTaskState.DONE, AiTaskState.FAILED):
        raise InvalidInputError([{"loc": ("state",), "msg": f"the task is {task.state.value}"}])
    if task.state is not AiTaskState.PAUSED:
        task.state, task.pause_reason, task.updated_at = (
            AiTaskState.PAUSED,
            PAUSED_BY_USER,
            utcnow(),
        )
        await session.flush()
    return AiTaskInfo.of(task)


async def resume_ai_task(
    session: AsyncSession, *, user_id: int, task_id: int, settings: Settings | None = None
) -> AiTaskInfo:
    """Make a paused task active again, next due from now (missed runs are not made up)."""
    await bind_session(session, settings)
    task = await _own_task(session, user_id, task_id)
    if task.state in (AiTaskState.DONE, AiTaskState.FAILED):
        raise InvalidInputError(
            [
                {
                    "loc": ("state",),
                    "msg": f"the task is {task.state.value}; give it a new schedule instead",
                }
            ]
        )
    if task.state is AiTaskState.PAUSED:
        now = utcnow()
        _scheduled(task, now)
        task.state, task.failures_in_row, task.pause_reason, task.updated_at = (
            AiTaskState.ACTIVE,
            0,
            None,
            now,
        )
        await session.flush()
    return AiTaskInfo.of(task)


async def delete_ai_task(
    session: AsyncSession, *, user_id: int, task_id: int, settings: Settings | None = None
) -> bool:
    """Delete a task and the record of its runs; False if it was gone already."""
    await bind_session(session, settings)
    if not await lock_owned(session, AiTask, task_id, user_id):
        return False
    await session.execute(delete(AiTaskRun).where(AiTaskRun.task_id == task_id))
    await session.execute(delete(AiTask).where(AiTask.id == task_id))
    return True
