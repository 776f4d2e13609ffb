"""Runs of AI tasks against the fake LLM, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.ai import run_ai_task
from jobs.context import JobContext
from jobs.db import AiTaskRun, AiTaskState, OutboundEmail, utcnow
from jobs.errors import TransientJobError
from jobs.settings import Settings
from tests.ai_data import (
    DUE,
    add_task,
    add_user,
    get_task,
    llm_settings,
    run_task,
    runs_of,
    tool_replies,
)
from tests.llm_server import FakeLlm

UTC = dt.UTC


async def cut_off_before_recording(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Leave the only run as a worker that died before recording its end would."""
    async with sessions.begin() as session:
        run = await session.scalar(select(AiTaskRun))
        assert run is not None
        run.status = "running"


async def test_run_calls_two_tools_and_answers(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """The model reads the user's calendar and Notion rows only, then answers; all recorded."""
    ann = await add_user(sessions, "ann@example.com")
    await add_user(sessions, "bob@example.com")
    task_id = await add_task(sessions, ann, next_run_at=DUE)
    llm_server.call_tools(
        ("get_calendar_events", {"start": "2026-06-01T00:00:00", "end": "2026-06-02T00:00:00"}),
        ("search_notion_pages", {"query": "report"}),
    )
    llm_server.answer("You have ann standup at 10:00; your weekly report is in Notion.")
    result = await run_task(pool, llm_settings(settings, llm_server), task_id)
    assert result["status"] == "succeeded" and result["steps"] == 2 and result["tool_calls"] == 2
    events, pages = tool_replies(llm_server.requests[1])
    assert [e["summary"] for e in events["result"]] == ["ann standup"]
    assert [p["title"] for p in pages["result"]] == ["ann weekly report"]
    first = llm_server.requests[0]
    assert first["messages"][1] == {
        "role": "user",
        "content": "Summarise my day and e-mail it to me.",
    }
    assert {t["function"]["name"] for t in first["tools"]} == {
        "get_calendar_events",
        "search_notion_pages",
        "send_email_to_user",
        "save_ai_task",
        "get_user_profile",
    }
    [run] = await runs_of(sessions, task_id)
    assert run.answer == result["answer"] and run.error is None and run.tokens_used > 0
    assert [c["name"] for c in run.tool_calls] == ["get_calendar_events", "search_notion_pages"]
    assert json.loads(run.tool_calls[1]["arguments"]) == {"query": "report"}
    assert (
        run.prompt.endswith("Summarise my day and e-mail it to me.")
        and "Europe/Berlin" in run.prompt
    )
    assert run.duration_ms is not None and run.finished_at is not None
    task = await get_task(sessions, task_id)
    assert task.state is AiTaskState.DONE and task.last_result == run.answer  # one-off: done


async def test_another_users_task_id_is_refused(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """save_ai_task naming Bob's task id in Ann's run is a tool error; Bob's task is untouched."""
    ann, bob = (
        await add_user(sessions, "ann@example.com"),
        await add_user(sessions, "bob@example.com"),
    )
    task_id = await add_task(sessions, ann, next_run_at=DUE)
    bobs = await add_task(
        sessions, bob, next_run_at=DUE + dt.timedelta(days=1), instruction="Bob's"
    )
    llm_server.call_tools(("save_ai_task", {"task_id": bobs, "instruction": "send me Bob's mail"}))
    llm_server.answer("I cannot change that task.")
    result = await run_task(pool, llm_settings(settings, llm_server), task_id)
    assert result["status"] == "succeeded"
    [reply] = tool_replies(llm_server.requests[1])
    assert reply == {"error": f"task {bobs} is not one of this user's tasks"}
    [run] = await runs_of(sessions, task_id)
    assert run.tool_calls[0]["ok"] is False
    assert (await get_task(sessions, bobs)).instruction == "Bob's"


async def test_malformed_tool_arguments_go_back_as_tool_errors(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """Bad JSON, wrong types and an unknown tool each get a tool error; the model then answers."""
    ann = await add_user(sessions, "ann@example.com")
    task_id = await add_task(sessions, ann, next_run_at=DUE)
    llm_server.call_tools(
        ("get_calendar_events", '{"start": "2026-06-01T00:00:00", '),
        ("search_notion_pages", {"query": "x", "limit": "many"}),
        ("delete_everything", {}),
    )
    llm_server.answer("Recovered.")
    result = await run_task(pool, llm_settings(settings, llm_server), task_id)
    assert result["status"] == "succeeded" and result["answer"] == "Recovered."
    bad_json, bad_type, unknown = (r["error"] for r in tool_replies(llm_server.requests[1]))
    assert bad_json.startswith("arguments are not valid JSON:")
    assert bad_type.startswith("invalid arguments: limit: Input should be a valid integer")
    assert unknown.startswith("unknown tool 'delete_everything'; tools: get_calendar_events")


async def test_email_tool_queues_once_even_when_the_run_repeats(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """The e-mail goes to the user's address with a deliver_email job; re-runs add no e-mail."""
    ann = await add_user(sessions, "ann@example.com")
    task_id = await add_task(sessions, ann, next_run_at=DUE, cron="0 7 * * *")
    ai_settings = llm_settings(settings, llm_server)
    for _ in range(2):  # the second time plays a crash after the e-mail, before the record
        llm_server.call_tools(("send_email_to_user", {"subject": "Your day", "body": "Busy."}))
        llm_server.answer("Sent.")
    await run_task(pool, ai_settings, task_id, job_id="first")
    await cut_off_before_recording(sessions)
    await run_task(pool, ai_settings, task_id, job_id="after-crash")
    again = await run_task(pool, ai_settings, task_id, job_id="duplicate")
    assert again["already_recorded"] is True and len(llm_server.requests) == 4
    async with sessions() as session:
        [email] = list(await session.scalars(select(OutboundEmail)))
    assert (email.to_address, email.subject, email.user_id) == ("ann@example.com", "Your day", ann)
    deliver = await pool.job(f"deliver-email:{email.id}")
    info = await deliver.info()
    assert (
        info is not None
        and info.function == "deliver_email"
        and info.kwargs["email_id"] == email.id
    )
    assert len(await runs_of(sessions, task_id)) == 1


async def test_failure_streak_pauses_the_task(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """Three runs refused by the LLM (wrong key) in a row pause the task with the reason."""
    ann = await add_user(sessions, "ann@example.com")
    task_id = await add_task(sessions, ann, next_run_at=DUE, cron="0 7 * * *")
    wrong_key = llm_settings(settings, llm_server).model_copy(
        update={"llm_api_key": SecretStr("sk-wrong")}
    )
    for day in range(3):
        result = await run_task(pool, wrong_key, task_id, DUE + dt.timedelta(days=day))
        assert result["status"] == "failed"
        assert result["error"] == "LlmError: LLM API HTTP 401: Incorrect API key provided."
        task = await get_task(sessions, task_id)
        assert task.failures_in_row == day + 1
        assert task.state is (AiTaskState.PAUSED if day == 2 else AiTaskState.ACTIVE)
    assert task.pause_reason is not None and task.pause_reason.startswith("3 failed runs in a row")
    assert task.next_run_at is None
    skipped = await run_task(pool, wrong_key, task_id, DUE + dt.timedelta(days=3))
    assert skipped == {"task_id": task_id, "status": "skipped", "reason": "task is paused"}


async def test_transient_llm_failure_is_retried_then_recorded_on_the_last_try(
    pool: JobsPool,
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """A 429 asking for 60 s re-raises on try 1 (run stays open) and fails the last try's run."""
    ann = await add_user(sessions, "ann@example.com")
    task_id = await add_task(sessions, ann, next_run_at=DUE, cron="0 7 * * *")
    llm_server.fail(429, retry_after=60, times=2)
    async with httpx.AsyncClient() as http:

        def context(try_number: int) -> JobContext:
            return JobContext(
                job_id="j",
                job_name="run_ai_task",
                queue="jobs:queue:ai",
                try_number=try_number,
                max_tries=3,
                enqueue_time=utcnow(),
                settings=llm_settings(settings, llm_server),
                engine=engine,
                sessions=sessions,
                http=http,
                pool=pool,
            )

        with pytest.raises(TransientJobError) as error:
            await run_ai_task(context(1), task_id=task_id, scheduled_for=DUE)
        assert error.value.retry_after == 60
        [run] = await runs_of(sessions, task_id)
        assert run.status == "running" and run.error is not None and "will be retried" in run.error
        assert (await get_task(sessions, task_id)).failures_in_row == 0
        result = await run_ai_task(context(3), task_id=task_id, scheduled_for=DUE)
    assert result["status"] == "failed" and "HTTP 429" in result["error"]
    assert (await get_task(sessions, task_id)).failures_in_row == 1


async def test_task_created_by_a_run_is_created_once_when_the_run_repeats(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    llm_server: FakeLlm,
) -> None:
    """A run repeated after a crash that creates the same reminder again leaves one new task."""
    from jobs.db import AiTask

    ann = await add_user(sessions, "ann@example.com")
    task_id = await add_task(sessions, ann, next_run_at=DUE, cron="0 7 * * *")
    ai_settings = llm_settings(settings, llm_server)
    reminder = {"instruction": "remind me to send the report", "run_at": "2026-06-05T09:00:00"}
    for _ in range(2):
        llm_server.call_tools(("save_ai_task", reminder))
        llm_server.answer("Reminder set.")
    await run_task(pool, ai_settings, task_id, job_id="first")
    await cut_off_before_recording(sessions)
    await run_task(pool, ai_settings, task_id, job_id="after-crash")
    async with sessions() as session:
        created = list(await session.scalars(select(AiTask).where(AiTask.id != task_id)))
    assert len(created) == 1
    assert (created[0].user_id, created[0].instruction) == (ann, reminder["instruction"])
