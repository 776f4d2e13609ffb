"""AI task states and schedules: failed one-offs, tasks without a next run, local tool times."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.ai import next_run_of
from jobs.ai.scheduling import claim_due_tasks
from jobs.db import AiTask, AiTaskState, OutboundEmail
from jobs.schedule import ScheduleError
from jobs.settings import Settings
from tests.ai_data import add_task, add_user, get_task, llm_settings, run_task, tool_replies
from tests.llm_server import FakeLlm

UTC = dt.UTC
AI_QUEUE = "jobs:queue:ai"
NOW = dt.datetime(2026, 3, 27, 12, 0, tzinfo=UTC)


async def test_failed_one_off_task_is_failed_not_done(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """A one-off task whose only run fails ends 'failed' with the error; a success ends 'done'."""
    ann = await add_user(sessions, "ann@example.com")
    failing = await add_task(sessions, ann, next_run_at=NOW)
    wrong_key = llm_settings(settings, llm_server).model_copy(
        update={"llm_api_key": SecretStr("sk-wrong")}
    )
    assert (await run_task(pool, wrong_key, failing, NOW))["status"] == "failed"
    task = await get_task(sessions, failing)
    assert (task.state, task.next_run_at) == (AiTaskState.FAILED, None)
    assert task.last_result == "error: LlmError: LLM API HTTP 401: Incorrect API key provided."
    succeeding = await add_task(sessions, ann, next_run_at=NOW)
    llm_server.answer("Done.")
    await run_task(pool, llm_settings(settings, llm_server), succeeding, NOW)
    assert (await get_task(sessions, succeeding)).state is AiTaskState.DONE


async def add_unscheduled(
    sessions: async_sessionmaker[AsyncSession], user_id: int, **fields: Any
) -> int:
    """An active task with no next_run_at, as a backend that forgot to set it would leave it."""
    async with sessions.begin() as session:
        task = AiTask(user_id=user_id, instruction="x", timezone="Europe/Berlin", **fields)
        session.add(task)
        await session.flush()
        return task.id


async def test_tasks_without_next_run_are_scheduled_by_the_scheduler_and_reported(
    pool: JobsPool, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    """Tasks without next_run_at get one (a past one-off runs now) or pause, once for two passes."""
    ann = await add_user(sessions, "ann@example.com")
    cron = await add_unscheduled(sessions, ann, cron_expression="30 7 * * 1-5")
    past = await add_unscheduled(sessions, ann, run_at=NOW - dt.timedelta(hours=1))
    future = await add_unscheduled(sessions, ann, run_at=NOW + dt.timedelta(days=1))
    neither = await add_unscheduled(sessions, ann)
    broken = await add_unscheduled(sessions, ann, cron_expression="61 * * * *")
    with caplog.at_level(logging.WARNING, logger="jobs.ai"):  # two schedulers at once
        passes = await asyncio.gather(
            *(claim_due_tasks(sessions, pool, now=NOW, time_budget=5) for _ in range(2))
        )
    first, second = (p.as_dict() for p in passes)
    totals = {key: first[key] + second[key] for key in first}
    assert totals == {"enqueued": 1, "claimed_elsewhere": 0, "paused": 2, "unscheduled": 5}
    # Friday 12:00Z: the next weekday 07:30 in Berlin is Monday, after the DST change (05:30Z)
    assert (await get_task(sessions, cron)).next_run_at == dt.datetime(
        2026, 3, 30, 5, 30, tzinfo=UTC
    )
    assert (await get_task(sessions, future)).next_run_at == NOW + dt.timedelta(days=1)
    assert await pool.zcard(AI_QUEUE) == 1
    assert (await pool.zrange(AI_QUEUE, 0, -1))[0].decode().startswith(f"ai-task:{past}:")
    for task_id, reason in [
        (neither, "has neither run_at nor cron_expression"),
        (broken, "invalid cron expression '61 * * * *'"),
    ]:
        task = await get_task(sessions, task_id)
        assert task.state is AiTaskState.PAUSED and reason in str(task.pause_reason)
    assert f"AI task {cron} had no next_run_at" in caplog.text
    again = await claim_due_tasks(sessions, pool, now=NOW, time_budget=5)
    assert again.as_dict()["unscheduled"] == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"cron_expression": "0 9 * * *", "timezone": "Asia/Kathmandu"},
            "2026-03-28T03:15:00+00:00",
        ),
        (
            {"cron_expression": "0 8 * * *", "timezone": "America/New_York"},
            "2026-03-28T12:00:00+00:00",
        ),
        ({"run_at": NOW - dt.timedelta(days=3)}, "2026-03-24T12:00:00+00:00"),
        # a naive run_at (as an API caller may pass it) is read in the task's zone
        (
            {"run_at": dt.datetime(2026, 3, 28, 9), "timezone": "Asia/Kathmandu"},
            "2026-03-28T03:15:00+00:00",
        ),
    ],
)
def test_next_run_of_a_task_follows_its_schedule(fields: dict[str, Any], expected: str) -> None:
    """next_run_of gives a cron task's next local time (DST-correct) and a one-off's run_at."""
    task = AiTask(user_id=1, instruction="x", **fields)
    following = next_run_of(task, NOW)
    assert following is not None and following.isoformat() == expected


def test_next_run_of_a_task_without_a_schedule_is_an_error() -> None:
    """A task with neither run_at nor cron_expression raises ScheduleError saying so."""
    with pytest.raises(ScheduleError, match="has neither run_at nor cron_expression"):
        next_run_of(AiTask(user_id=1, instruction="x", timezone="UTC"), NOW)


async def test_tool_results_give_times_in_the_users_zone_with_offset(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """Event times, a page's edit time and a new task's next run come back at +05:45, not UTC."""
    ann = await add_user(sessions, "ann@example.com", zone="Asia/Kathmandu")
    task_id = await add_task(sessions, ann, next_run_at=NOW, zone="Asia/Kathmandu")
    llm_server.call_tools(
        ("get_calendar_events", {"start": "2026-06-01T00:00:00", "end": "2026-06-02T00:00:00"}),
        ("search_notion_pages", {"query": "report"}),
        ("save_ai_task", {"instruction": "call mum", "run_at": "2026-06-05T09:00:00"}),
    )
    llm_server.answer("Done.")
    await run_task(pool, llm_settings(settings, llm_server), task_id, NOW)
    events, pages, saved = (reply["result"] for reply in tool_replies(llm_server.requests[1]))
    # the event is stored as 08:00Z; the page was edited at 2026-05-31 18:00Z
    assert [(e["start"], e["end"]) for e in events] == [
        ("2026-06-01T13:45:00+05:45", "2026-06-01T14:15:00+05:45")
    ]
    assert [p["last_edited"] for p in pages] == ["2026-05-31T23:45:00+05:45"]
    assert saved["next_run_at"] == "2026-06-05T09:00:00+05:45"
    assert "Asia/Kathmandu" in llm_server.requests[0]["messages"][0]["content"]


async def test_unstorable_text_in_tool_arguments_is_a_tool_error_naming_the_field(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """A NUL in the e-mail body the model sends is refused as a tool error; nothing is queued."""
    ann = await add_user(sessions, "ann@example.com")
    task_id = await add_task(sessions, ann, next_run_at=NOW)
    llm_server.call_tools(("send_email_to_user", {"subject": "Hi", "body": "a\u0000b"}))
    llm_server.answer("Could not send.")
    result = await run_task(pool, llm_settings(settings, llm_server), task_id, NOW)
    assert result["status"] == "succeeded"
    [reply] = tool_replies(llm_server.requests[1])
    assert reply["error"].startswith("invalid arguments: body: ")
    assert "NUL character (U+0000)" in reply["error"]
    async with sessions() as session:
        assert list(await session.scalars(select(OutboundEmail))) == []
