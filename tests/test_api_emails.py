"""Queueing a transactional e-mail in the caller's transaction: it stands or falls with it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from jobs import JobsPool
from jobs.api import InvalidInputError, queue_transactional_email, wait_for_enqueues
from jobs.db import OutboundEmail, utcnow
from jobs.email import deliver_email
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
async def backend(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions of the backend's own engine, with a table of its own for orders."""
    engine = create_async_engine(settings.resolved_database_url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE IF EXISTS shop_orders"))
        await connection.execute(text("CREATE TABLE shop_orders (id INTEGER PRIMARY KEY)"))
    yield async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE shop_orders"))
    await engine.dispose()


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """The subjects in the outbox."""
    async with sessions() as session:
        return list(await session.scalars(select(OutboundEmail.subject).order_by(OutboundEmail.id)))


async def test_the_email_is_sent_if_and_only_if_the_callers_transaction_commits(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    settings: Settings,
    smtp_server: SmtpServer,
) -> None:
    """An order rolled back leaves no e-mail and no job; a committed one is delivered."""
    for order, commit in ((1, False), (2, True)):
        async with backend() as session:
            await session.execute(text(f"INSERT INTO shop_orders (id) VALUES ({order})"))
            queued = await queue_transactional_email(
                session,
                pool,
                to="ann@example.com",
                subject=f"Order {order} confirmed",
                text="Thank you!",
                dedupe_key=f"order-confirmation:{order}",
            )
            assert queued.delivery_job_id == f"deliver_email:{queued.email_id}"
            await (session.commit() if commit else session.rollback())
        await wait_for_enqueues()
    assert await outbox(sessions) == ["Order 2 confirmed"]
    assert await pool.zcard("jobs:queue:email") == 1
    await run_burst(await make_worker(settings, [deliver_email]))
    [message] = smtp_server.messages
    assert message["Subject"] == "Order 2 confirmed"


async def test_a_retried_request_queues_one_email_and_later_ones_wait_for_the_sweep(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
) -> None:
    """The same dedupe key returns the first e-mail; send_after in the future enqueues nothing."""
    ids = []
    for _ in range(2):
        async with backend.begin() as session:
            queued = await queue_transactional_email(
                session, pool, to="a@example.com", subject="Hi", text="x", dedupe_key="welcome:1"
            )
            ids.append(queued.email_id)
    async with backend.begin() as session:
        later = await queue_transactional_email(
            session,
            pool,
            to="a@example.com",
            subject="Reminder",
            text="x",
            send_after=utcnow() + dt.timedelta(days=1),
        )
    await wait_for_enqueues()
    assert ids[0] == ids[1] and later.delivery_job_id is None
    assert await outbox(sessions) == ["Hi", "Reminder"]
    assert await pool.zcard("jobs:queue:email") == 1


async def test_bad_messages_are_refused_before_anything_is_written(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
) -> None:
    """No '@', an empty subject, a NUL in the text, a naive send_after: refused, naming each."""
    async with backend() as session:
        with pytest.raises(InvalidInputError) as refused:
            await queue_transactional_email(session, pool, to="ann", subject="", text="x")
        assert [e["loc"] for e in refused.value.errors] == [("to",), ("subject",)]
        with pytest.raises(InvalidInputError, match="text: contains a NUL character"):
            await queue_transactional_email(
                session, pool, to="a@example.com", subject="s", text="a\x00"
            )
        with pytest.raises(InvalidInputError, match="send_after: Input should have timezone"):
            await queue_transactional_email(
                session,
                pool,
                to="a@example.com",
                subject="s",
                text="x",
                send_after=dt.datetime(2030, 1, 1),
            )
        await session.commit()
    await wait_for_enqueues()
    assert await outbox(sessions) == []
    assert await pool.zcard("jobs:queue:email") == 0
