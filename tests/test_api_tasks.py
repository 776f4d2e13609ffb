"""The service API for AI tasks: schedules checked, next_run_at computed, only the user's tasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from jobs.ai.scheduling import next_run_of
from jobs.api import (
    InvalidInputError,
    NotFoundError,
    create_ai_task,
    delete_ai_task,
    pause_ai_task,
    resume_ai_task,
    update_ai_task,
)
from jobs.db import AiTask, AiTaskRun, AiTaskState, User, utcnow
from jobs.schedule import Schedule
from jobs.settings import Settings

pytestmark = pytest.mark.usefixtures("engine")

UTC = dt.UTC


@pytest.fixture
async def backend(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions of the backend's own engine."""
    engine = create_async_engine(settings.resolved_database_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
async def users(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """Ann's and Bob's user ids."""
    async with sessions.begin() as session:
        ann, bob = User(email="ann@example.com"), User(email="bob@example.com")
        session.add_all([ann, bob])
        await session.flush()
        return ann.id, bob.id


async def test_a_recurring_task_gets_its_next_run_in_the_users_zone(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    users: tuple[int, int],
) -> None:
    """'30 7 * * 1-5' in Berlin is due next weekday at 07:30 Berlin time, as the scheduler says."""
    ann, _ = users
    before = utcnow()
    async with backend.begin() as session:
        task, created = await create_ai_task(
            session,
            user_id=ann,
            title="Morning briefing",
            instruction="Summarise my day",
            cron_expression="30 7 * * 1-5",
            timezone="Europe/Berlin",
        )
    assert created and task.state == "active" and task.next_run_at is not None
    expected = Schedule.parse("30 7 * * 1-5", "Europe/Berlin").next_after(before)
    assert abs(task.next_run_at - expected) < dt.timedelta(minutes=1)
    async with sessions() as session:
        stored = await session.get(AiTask, task.id)
    assert stored is not None and stored.next_run_at == next_run_of(stored, before)


async def test_invalid_schedules_are_refused_naming_the_problem(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    users: tuple[int, int],
) -> None:
    """A bad cron field, both or neither schedule, a naive time, an unknown zone: refused."""
    ann, _ = users
    cases = [
        ({"cron_expression": "61 * * * *"}, "cron_expression: "),
        ({"cron_expression": "* * * * *", "run_at": utcnow()}, "exactly one of run_at and cron"),
        ({}, "exactly one of run_at and cron_expression"),
        ({"run_at": dt.datetime(2030, 1, 1, 9)}, "run_at: Input should have timezone info"),
        ({"cron_expression": "0 9 * * *", "timezone": "Mars/Base"}, "unknown IANA time zone"),
        ({"cron_expression": "0 9 * * *", "instruction": ""}, "instruction: String should"),
    ]
    async with backend() as session:
        for fields, message in cases:
            values = {"user_id": ann, "instruction": "x", **fields}
            with pytest.raises(InvalidInputError, match=message):
                await create_ai_task(session, **values)
        await session.commit()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AiTask)) == 0


async def test_the_same_idempotency_key_creates_one_task(
    backend: async_sessionmaker[AsyncSession], users: tuple[int, int]
) -> None:
    """A retried create with the same key returns the first task; another key makes another."""
    ann, bob = users
    made = []
    for user, key in ((ann, "req-1"), (ann, "req-1"), (ann, "req-2"), (bob, "req-1")):
        async with backend.begin() as session:
            task, created = await create_ai_task(
                session,
                user_id=user,
                instruction="Remind me",
                run_at=dt.datetime(2030, 5, 1, 9, tzinfo=UTC),
                idempotency_key=key,
            )
            made.append((task.id, created))
    assert made[1] == (made[0][0], False)
    assert made[0][1] and made[2][1] and made[3][1]
    assert len({task_id for task_id, _ in made}) == 3


async def test_update_pause_resume_and_delete_work_on_the_users_own_task_only(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    users: tuple[int, int],
) -> None:
    """A new schedule moves next_run_at; pause and resume; another user gets 404; delete twice."""
    ann, bob = users
    async with backend.begin() as session:
        task, _ = await create_ai_task(
            session, user_id=ann, instruction="Weekly review", cron_expression="0 18 * * 5"
        )
    later = dt.datetime(2031, 1, 1, 12, tzinfo=UTC)
    async with backend.begin() as session:
        moved = await update_ai_task(
            session, user_id=ann, task_id=task.id, run_at=later, title="One review"
        )
        with pytest.raises(NotFoundError):
            await update_ai_task(session, user_id=bob, task_id=task.id, title="mine now")
        with pytest.raises(InvalidInputError, match="give at most one of run_at and cron"):
            await update_ai_task(
                session, user_id=ann, task_id=task.id, run_at=later, cron_expression="0 * * * *"
            )
    assert (moved.next_run_at, moved.cron_expression, moved.title) == (later, None, "One review")
    async with backend.begin() as session:
        paused = await pause_ai_task(session, user_id=ann, task_id=task.id)
        paused_again = await pause_ai_task(session, user_id=ann, task_id=task.id)
    assert paused.state == paused_again.state == "paused"
    assert paused.pause_reason == "paused by the user"
    async with backend.begin() as session:
        resumed = await resume_ai_task(session, user_id=ann, task_id=task.id)
    assert (resumed.state, resumed.pause_reason, resumed.next_run_at) == ("active", None, later)

    async with sessions.begin() as session:
        session.add(AiTaskRun(task_id=task.id, user_id=ann, scheduled_for=later))
        stored = await session.get(AiTask, task.id)
        assert stored is not None
        stored.state = AiTaskState.DONE
    async with backend.begin() as session:
        with pytest.raises(InvalidInputError, match="state: the task is done"):
            await resume_ai_task(session, user_id=ann, task_id=task.id)
        again = await update_ai_task(
            session, user_id=ann, task_id=task.id, cron_expression="0 9 * * *"
        )
    assert again.state == "active"
    async with backend.begin() as session:
        with pytest.raises(NotFoundError):
            await delete_ai_task(session, user_id=bob, task_id=task.id)
        assert await delete_ai_task(session, user_id=ann, task_id=task.id) is True
        assert await delete_ai_task(session, user_id=ann, task_id=task.id) is False
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AiTaskRun)) == 0


async def test_a_finished_one_off_runs_again_only_at_a_new_time(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    users: tuple[int, int],
) -> None:
    """A done one-off given its old run_at or only a zone is refused; a new run_at revives it."""
    ann, _ = users
    ran_at = dt.datetime(2030, 6, 1, 9, tzinfo=UTC)
    async with backend.begin() as session:
        task, _ = await create_ai_task(session, user_id=ann, instruction="Once", run_at=ran_at)
    async with sessions.begin() as session:
        stored = await session.get(AiTask, task.id)
        assert stored is not None
        stored.state = AiTaskState.DONE
    for changes in ({"run_at": ran_at}, {"timezone": "Europe/Paris"}):
        async with backend.begin() as session:
            with pytest.raises(InvalidInputError, match="run_at: the task is done; give it a new"):
                await update_ai_task(session, user_id=ann, task_id=task.id, **changes)
    async with backend.begin() as session:
        renamed = await update_ai_task(session, user_id=ann, task_id=task.id, title="Ran once")
        assert (renamed.state, renamed.title) == ("done", "Ran once")
        later = ran_at + dt.timedelta(days=1)
        again = await update_ai_task(session, user_id=ann, task_id=task.id, run_at=later)
    assert (again.state, again.next_run_at) == ("active", later)
