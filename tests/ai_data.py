"""What the AI task tests need: users, their tasks, calendar events, Notion pages, and runs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.ai import run_ai_task, schedule_ai_tasks
from jobs.db import (
    AiTask,
    AiTaskRun,
    AiTaskState,
    CalendarEvent,
    GoogleAccount,
    NotionIntegration,
    NotionPage,
    User,
)
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.llm_server import API_KEY, FakeLlm

UTC = dt.UTC
AI_JOBS = [schedule_ai_tasks, run_ai_task]
#: When the tasks of the run tests are due.
DUE = dt.datetime(2026, 6, 1, 5, tzinfo=UTC)


def llm_settings(settings: Settings, server: FakeLlm) -> Settings:
    """``settings`` pointing the LLM client at the fake server with its key."""
    return settings.model_copy(
        update={"llm_base_url": server.base_url, "llm_api_key": SecretStr(API_KEY)}
    )


async def add_user(
    sessions: async_sessionmaker[AsyncSession], email: str, zone: str = "Europe/Berlin"
) -> int:
    """Insert a user with a calendar event and a Notion page of their own; the user's id."""
    name = email.split("@")[0]
    async with sessions.begin() as session:
        user = User(email=email, display_name=name.title(), timezone=zone)
        session.add(user)
        await session.flush()
        account = GoogleAccount(user_id=user.id, google_email=email)
        integration = NotionIntegration(user_id=user.id, workspace_name=name)
        session.add_all([account, integration])
        await session.flush()
        start = dt.datetime(2026, 6, 1, 8, tzinfo=UTC)
        session.add_all(
            [
                CalendarEvent(
                    user_id=user.id,
                    account_id=account.id,
                    calendar_id="primary",
                    remote_id=f"ev-{name}",
                    summary=f"{name} standup",
                    starts_at=start,
                    ends_at=start + dt.timedelta(minutes=30),
                ),
                NotionPage(
                    user_id=user.id,
                    integration_id=integration.id,
                    remote_id=f"pg-{name}",
                    title=f"{name} weekly report",
                    url=f"https://notion.so/{name}",
                    last_edited_time=dt.datetime(2026, 5, 31, 18, tzinfo=UTC),
                ),
            ]
        )
        return user.id


async def add_task(
    sessions: async_sessionmaker[AsyncSession],
    user_id: int,
    *,
    next_run_at: dt.datetime,
    cron: str | None = None,
    zone: str = "Europe/Berlin",
    instruction: str = "Summarise my day and e-mail it to me.",
) -> int:
    """Insert an active task (one-off unless ``cron``) due at ``next_run_at``; its id."""
    async with sessions.begin() as session:
        task = AiTask(
            user_id=user_id,
            instruction=instruction,
            cron_expression=cron,
            timezone=zone,
            run_at=None if cron else next_run_at,
            next_run_at=next_run_at,
            state=AiTaskState.ACTIVE,
            failures_in_row=0,
        )
        session.add(task)
        await session.flush()
        return task.id


async def get_task(sessions: async_sessionmaker[AsyncSession], task_id: int) -> AiTask:
    """The task as stored now."""
    async with sessions() as session:
        task = await session.get(AiTask, task_id)
        assert task is not None
        return task


async def runs_of(sessions: async_sessionmaker[AsyncSession], task_id: int) -> list[AiTaskRun]:
    """The task's run records, oldest scheduled first."""
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AiTaskRun)
                .where(AiTaskRun.task_id == task_id)
                .order_by(AiTaskRun.scheduled_for)
            )
        )


async def run_task(
    pool: JobsPool,
    settings: Settings,
    task_id: int,
    scheduled_for: dt.datetime = DUE,
    job_id: str | None = None,
) -> Any:
    """Enqueue run_ai_task, run an ai worker in burst mode, and return the job's result."""
    job = await pool.enqueue_job(
        "run_ai_task", task_id=task_id, scheduled_for=scheduled_for, _job_id=job_id
    )
    assert job is not None
    await run_burst(await make_worker(settings, AI_JOBS, family="ai"))
    return await job.result(timeout=1)


def tool_replies(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The decoded contents of the tool messages in a request the fake received."""
    return [json.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]
