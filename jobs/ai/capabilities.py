"""The assistant's tools: the user's calendar, Notion pages, e-mail, AI tasks and profile.

Every query is filtered by ``scope.user_id``; an id in the arguments that names another user's
row is refused as if it did not exist. Times in results are ISO 8601 in the user's zone (the one
the prompt names) with the offset; text a database cannot store is refused as a tool error.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import and_, or_, select

from jobs.ai.scheduling import next_run_of
from jobs.ai.tools import Tool, ToolError, ToolScope
from jobs.db.ai_models import AiTask, AiTaskState
from jobs.db.models import User, utcnow
from jobs.db.outbox import queue_email
from jobs.db.sync_models import CalendarEvent, NotionPage
from jobs.schedule import ScheduleError
from jobs.storable import unstorable_values

__all__ = ["ASSISTANT_TOOLS"]


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        for _, problem in unstorable_values(value):
            raise ValueError(problem)
        return value


class CalendarRange(_Arguments):
    """A time range; times without an offset are read in the user's time zone."""

    start: dt.datetime
    end: dt.datetime
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class PageSearch(_Arguments):
    """Words to look for in page titles."""

    query: Annotated[str, Field(min_length=1, max_length=200)]
    limit: Annotated[int, Field(ge=1, le=50)] = 10


class EmailToUser(_Arguments):
    """An e-mail to the user's own address."""

    subject: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(min_length=1, max_length=20000)]


class TaskChange(_Arguments):
    """A new AI task (no task_id) or changes to one of the user's tasks."""

    task_id: int | None = None
    title: Annotated[str, Field(max_length=200)] | None = None
    instruction: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    run_at: dt.datetime | None = None
    cron_expression: Annotated[str, Field(max_length=120)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    state: Literal["active", "paused"] | None = None


class NoArguments(_Arguments):
    """No arguments."""


async def read_calendar(scope: ToolScope, args: CalendarRange) -> list[dict[str, Any]]:
    """The user's events overlapping [start, end), timed and all-day."""
    start, end = scope.aware(args.start), scope.aware(args.end)
    if end <= start:
        raise ToolError("end must be after start")
    first_day, last_day = start.astimezone(scope.zone).date(), end.astimezone(scope.zone).date()
    async with scope.sessions() as session:
        events = await session.scalars(
            select(CalendarEvent)
            .where(
                CalendarEvent.user_id == scope.user_id,
                CalendarEvent.status != "cancelled",
                or_(
                    and_(CalendarEvent.starts_at < end, CalendarEvent.ends_at > start),
                    and_(
                        CalendarEvent.all_day.is_(True),
                        CalendarEvent.start_date <= last_day,
                        CalendarEvent.end_date > first_day,
                    ),
                ),
            )
            .order_by(CalendarEvent.starts_at, CalendarEvent.start_date)
            .limit(args.limit)
        )
        return [
            {
                "summary": e.summary,
                "start": _date(e.start_date) if e.all_day else scope.local(e.starts_at),
                "end": _date(e.end_date) if e.all_day else scope.local(e.ends_at),
                "all_day": e.all_day,
                "location": e.location,
            }
            for e in events
        ]


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


async def search_pages(scope: ToolScope, args: PageSearch) -> list[dict[str, Any]]:
    """The user's Notion pages whose title contains the query, newest edit first."""
    pattern = "%" + args.query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    async with scope.sessions() as session:
        pages = await session.scalars(
            select(NotionPage)
            .where(NotionPage.user_id == scope.user_id, NotionPage.title.ilike(pattern, "\\"))
            .order_by(NotionPage.last_edited_time.desc())
            .limit(args.limit)
        )
        return [
            {"title": p.title, "url": p.url, "last_edited": scope.local(p.last_edited_time)}
            for p in pages
        ]


async def email_user(scope: ToolScope, args: EmailToUser) -> dict[str, Any]:
    """Queue an e-mail to the user; once per run and position, however often the run repeats."""
    scope.emails_queued += 1
    dedupe_key = f"ai-run:{scope.run_id}:email:{scope.emails_queued}"
    async with scope.sessions.begin() as session:
        user = await session.get(User, scope.user_id)
        if user is None:
            raise ToolError("the user no longer exists")
        email_id = await queue_email(
            session,
            to=user.email,
            subject=args.subject,
            text=args.body,
            user_id=user.id,
            dedupe_key=dedupe_key,
        )
    await scope.pool.enqueue_job(
        "deliver_email", email_id=email_id, _job_id=f"deliver-email:{email_id}"
    )
    return {"queued": True, "email_id": email_id, "to": user.email}


def _apply(task: AiTask, args: TaskChange, now: dt.datetime, scope: ToolScope) -> None:
    for name in ("title", "instruction", "timezone"):
        value = getattr(args, name)
        if value is not None:
            setattr(task, name, value)
    if args.cron_expression is not None:
        task.cron_expression, task.run_at = args.cron_expression, None
    if args.run_at is not None:
        task.run_at, task.cron_expression = scope.aware(args.run_at), None
    if args.state is not None:
        task.state = AiTaskState(args.state)
    try:
        task.next_run_at = next_run_of(task, now)
    except ScheduleError as error:
        raise ToolError(str(error)) from None
    if task.state is AiTaskState.ACTIVE:
        task.pause_reason = None
        task.failures_in_row = 0


async def save_task(scope: ToolScope, args: TaskChange) -> dict[str, Any]:
    """Create one of the user's AI tasks, or change one; another user's task is refused."""
    now = utcnow()
    async with scope.sessions.begin() as session:
        if args.task_id is None:
            if args.instruction is None or (args.run_at is None) == (args.cron_expression is None):
                raise ToolError("a new task needs an instruction and exactly one of run_at or cron")
            scope.tasks_created += 1
            origin = f"ai-run:{scope.run_id}:task:{scope.tasks_created}"
            created = await session.scalar(select(AiTask).where(AiTask.origin_key == origin))
            if created is None:
                user = await session.get(User, scope.user_id)
                created = AiTask(
                    user_id=scope.user_id,
                    title="",
                    instruction=args.instruction,
                    timezone=user.timezone if user else "UTC",
                    state=AiTaskState.ACTIVE,
                    failures_in_row=0,
                    origin_key=origin,
                )
                session.add(created)
            task = created
        else:
            found = await session.scalar(
                select(AiTask).where(AiTask.id == args.task_id, AiTask.user_id == scope.user_id)
            )
            if found is None:
                raise ToolError(f"task {args.task_id} is not one of this user's tasks")
            task = found
        _apply(task, args, now, scope)
        await session.flush()
        return {
            "task_id": task.id,
            "state": task.state.value,
            "next_run_at": scope.local(task.next_run_at),
        }


async def read_profile(scope: ToolScope, args: NoArguments) -> dict[str, Any]:
    """The user's name, address and time zone."""
    async with scope.sessions() as session:
        user = await session.get(User, scope.user_id)
    if user is None:
        raise ToolError("the user no longer exists")
    return {"display_name": user.display_name, "email": user.email, "timezone": user.timezone}


ASSISTANT_TOOLS = (
    Tool(
        "get_calendar_events",
        "List the user's calendar events overlapping a time range (ISO 8601 start and end).",
        CalendarRange,
        read_calendar,
    ),
    Tool("search_notion_pages", "Find the user's Notion pages by title.", PageSearch, search_pages),
    Tool(
        "send_email_to_user", "E-mail the user (their own address only).", EmailToUser, email_user
    ),
    Tool(
        "save_ai_task",
        "Create a scheduled AI task for the user (no task_id), or change one of theirs: "
        "a one-off run_at or a 5-field cron_expression in the task's time zone.",
        TaskChange,
        save_task,
    ),
    Tool(
        "get_user_profile", "Read the user's name, e-mail and time zone.", NoArguments, read_profile
    ),
)
