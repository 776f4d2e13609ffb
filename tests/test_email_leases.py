"""Outbox claims as short leases: renewed by a live holder, taken over once they run out.

A slowed SMTP server makes every delivery outlast the lease, so a claim that was not renewed
would be taken over and its e-mails sent twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import EmailStatus, OutboundEmail, utcnow
from jobs.email import deliver_email, process_email_queue, queue_email, send_email
from jobs.email.outbox import Outcome, claim_due, record_outcomes, renew_claims
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.smtp_server import SmtpServer

pytestmark = pytest.mark.usefixtures("engine")
EMAIL_JOBS = [send_email, deliver_email, process_email_queue]


async def queue_many(sessions: async_sessionmaker[AsyncSession], count: int) -> list[int]:
    """Queue ``count`` e-mails to distinct recipients; their ids."""
    async with sessions.begin() as session:
        return [
            await queue_email(session, to=f"user{i}@example.com", subject=f"#{i}", text="hi")
            for i in range(count)
        ]


async def status_count(sessions: async_sessionmaker[AsyncSession], status: EmailStatus) -> int:
    """Rows in ``status``."""
    async with sessions() as session:
        return int(
            await session.scalar(select(func.count()).where(OutboundEmail.status == status)) or 0
        )


async def until_sending(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Wait until some row is claimed."""
    while not await status_count(sessions, EmailStatus.SENDING):  # noqa: ASYNC110 - a DB poll
        await asyncio.sleep(0.01)


async def test_a_live_holder_renews_its_claim_so_a_later_sweep_sends_none_of_its_rows(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """A sweep outlasting its 1 s lease keeps its rows from a sweep started 1.2 s later."""
    await queue_many(sessions, 12)
    slow = settings.model_copy(update={"email_claim_lease": 1.0, "email_send_concurrency": 2})
    smtp_server.handler.data_delay = 0.25
    await pool.enqueue_job("process_email_queue", _job_id="first")
    first = asyncio.create_task(run_burst(await make_worker(slow, EMAIL_JOBS)))
    await until_sending(sessions)
    await asyncio.sleep(1.2)
    await pool.enqueue_job("process_email_queue", _job_id="second")
    await asyncio.gather(first, run_burst(await make_worker(slow, EMAIL_JOBS)))
    ids = smtp_server.handler.message_ids()
    assert len(ids) == 12 and len(set(ids)) == 12
    assert (await (await pool.job("first")).result(timeout=1))["sent"] == 12
    assert (await (await pool.job("second")).result(timeout=1))["claimed"] == 0
    assert await status_count(sessions, EmailStatus.SENT) == 12


async def test_a_sweep_and_an_immediate_send_of_the_same_row_send_it_once(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """deliver_email of a row a live sweep holds waits for the claim and reports it sent."""
    [email_id] = await queue_many(sessions, 1)
    slow = settings.model_copy(update={"email_claim_lease": 1.0})
    smtp_server.handler.data_delay = 2.0
    await pool.enqueue_job("process_email_queue")
    sweeping = asyncio.create_task(run_burst(await make_worker(slow, EMAIL_JOBS)))
    await until_sending(sessions)
    job = await pool.enqueue_job("deliver_email", email_id=email_id)
    assert job is not None
    await asyncio.gather(sweeping, run_burst(await make_worker(slow, EMAIL_JOBS)))
    assert len(smtp_server.messages) == 1
    result = await job.result(timeout=1)
    assert result["status"] == "sent"
    assert (await job.info()).job_try >= 2  # type: ignore[union-attr]


async def test_a_rerun_waits_for_a_claim_that_was_not_renewed_and_then_takes_it_over(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """A dead worker's claim (1.5 s left): deliver_email tries again at its end and sends."""
    [email_id] = await queue_many(sessions, 1)
    async with sessions.begin() as session:
        await session.execute(
            update(OutboundEmail).values(
                status=EmailStatus.SENDING,
                claim_token="dead",
                claimed_until=utcnow() + dt.timedelta(seconds=1.5),
            )
        )
    job = await pool.enqueue_job("deliver_email", email_id=email_id)
    assert job is not None
    started = time.monotonic()
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    assert (await job.result(timeout=1))["status"] == "sent"
    assert 1.5 <= time.monotonic() - started < 10
    assert len(smtp_server.messages) == 1
    assert (await job.info()).job_try == 2  # type: ignore[union-attr]


async def test_each_outcome_is_recorded_as_its_message_completes(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """During a sweep over 4 connections, at most 4 accepted messages lack their 'sent' row."""
    await queue_many(sessions, 40)
    lanes = settings.model_copy(update={"email_send_concurrency": 4})
    smtp_server.handler.data_delay = 0.05
    await pool.enqueue_job("process_email_queue")
    sweeping = asyncio.create_task(run_burst(await make_worker(lanes, EMAIL_JOBS)))
    worst = 0
    while not sweeping.done():
        received = len(smtp_server.messages)  # first: the row count read after is no older
        worst = max(worst, received - await status_count(sessions, EmailStatus.SENT))
        await asyncio.sleep(0.01)
    await sweeping
    assert len(smtp_server.messages) == 40
    assert worst <= 4, f"{worst} accepted messages were not recorded"


async def test_a_claim_taken_over_is_neither_renewed_nor_written_by_its_old_holder(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A claim taken over is neither renewed nor overwritten by its old holder's token."""
    await queue_many(sessions, 1)
    async with sessions.begin() as session:
        old = await claim_due(session, limit=10, lease=0.05)
    await asyncio.sleep(0.1)
    async with sessions.begin() as session:
        assert await renew_claims(session, [old.token], 60) == 0
        new = await claim_due(session, limit=10, lease=60)
    assert [e.id for e in new.emails] == [e.id for e in old.emails]
    [email] = old.emails
    async with sessions.begin() as session:
        await record_outcomes(session, [Outcome(email.id, EmailStatus.SENT, 1)], old.token)
    async with sessions() as session:
        row = await session.get(OutboundEmail, email.id)
    assert row is not None
    assert row.status is EmailStatus.SENDING and row.claim_token == new.token
    async with sessions.begin() as session:
        assert await renew_claims(session, [new.token], 60) == 1
        await record_outcomes(session, [Outcome(email.id, EmailStatus.SENT, 1)], new.token)
    assert await status_count(sessions, EmailStatus.SENT) == 1
