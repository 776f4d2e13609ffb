"""The email family against a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import EmailStatus, OutboundEmail, User, utcnow
from jobs.email import (
    deliver_email,
    process_email_queue,
    queue_email,
    send_daily_email_summary,
    send_email,
)
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.smtp_server import SmtpServer
from tests.zones import zone_at_local_hour

pytestmark = pytest.mark.usefixtures("engine")
EMAIL_JOBS = [send_email, deliver_email, process_email_queue, send_daily_email_summary]


async def queue(sessions: async_sessionmaker[AsyncSession], *addresses: str) -> list[int]:
    """Queue one e-mail per address; their ids."""
    async with sessions.begin() as session:
        return [
            await queue_email(session, to=a, subject=f"to {a}", text="hello", html="<p>hello</p>")
            for a in addresses
        ]


async def rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, OutboundEmail]:
    """Outbox rows by recipient."""
    async with sessions() as session:
        return {r.to_address: r for r in await session.scalars(select(OutboundEmail))}


async def test_sweep_sends_retries_4xx_and_fails_5xx_without_blocking_others(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """With a 451 and a 550 recipient the others go out; 451 waits, 550 fails with the reply."""
    await queue(
        sessions, "a@example.com", "tempfail@example.com", "reject@example.com", "b@example.com"
    )
    job = await pool.enqueue_job("process_email_queue")
    assert job is not None
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    result = await job.result(timeout=1)
    assert (result["sent"], result["retry"], result["failed"]) == (2, 1, 1)
    by_address = await rows(sessions)
    assert by_address["a@example.com"].status is EmailStatus.SENT
    waiting = by_address["tempfail@example.com"]
    assert waiting.status is EmailStatus.QUEUED and waiting.attempts == 1
    assert waiting.last_error is not None and waiting.last_error.startswith("451")
    # 60 s base with equal jitter: the retry waits between 30 and 60 seconds
    delay = (waiting.next_attempt_at - utcnow()).total_seconds()
    assert 25 < delay <= 60
    failed = by_address["reject@example.com"]
    assert failed.status is EmailStatus.FAILED
    assert failed.last_error == "550 5.1.1 no such user here"
    received = sorted(str(m["To"]) for m in smtp_server.messages)
    assert received == ["a@example.com", "b@example.com"]


async def test_message_id_is_stable_across_attempts(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """A message deferred with 451 and sent later carries the Message-ID derived from its row."""
    [email_id] = await queue(sessions, "tempfail-once@example.com")
    await pool.enqueue_job("process_email_queue")
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    assert smtp_server.messages == []
    async with sessions.begin() as session:
        await session.execute(
            update(OutboundEmail).values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )
    await pool.enqueue_job("process_email_queue")
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    [message] = smtp_server.messages
    row = (await rows(sessions))["tempfail-once@example.com"]
    assert row.status is EmailStatus.SENT and row.attempts == 2
    assert (
        message["Message-ID"]
        == f"<outbound.{email_id}.{int(row.created_at.timestamp())}@localhost>"
    )
    assert message.get_body(("html",)) is not None


async def test_two_workers_sweeping_at_once_never_send_twice(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """300 queued e-mails swept by two workers at once arrive exactly once each."""
    addresses = [f"user{i}@example.com" for i in range(300)]
    async with sessions.begin() as session:
        for address in addresses:
            await queue_email(session, to=address, subject="s", text="t")
    # a short lease: sweeps outlast it (renewed), and the follow-up sweep comes soon
    small_batches = settings.model_copy(update={"email_batch_size": 20, "email_claim_lease": 2.0})
    smtp_server.handler.data_delay = 0.01  # each sweep takes long enough for both to overlap
    await pool.enqueue_job("process_email_queue", _job_id="sweep-1")
    await pool.enqueue_job("process_email_queue", _job_id="sweep-2")
    workers = [await make_worker(small_batches, EMAIL_JOBS) for _ in range(2)]
    await asyncio.gather(*(run_burst(w) for w in workers))
    ids = smtp_server.handler.message_ids()
    assert len(ids) == 300 and len(set(ids)) == 300
    claimed = [
        (await (await pool.job(i)).result(timeout=1))["claimed"] for i in ("sweep-1", "sweep-2")
    ]
    assert sum(claimed) == 300 and all(c > 0 for c in claimed), claimed
    async with sessions() as session:
        assert (
            await session.scalar(
                select(func.count()).where(OutboundEmail.status == EmailStatus.SENT)
            )
            == 300
        )


async def test_send_email_delivers_now_and_a_rerun_does_not_send_again(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """send_email delivers at once; the same job run again (after a crash) sends nothing."""
    job = await pool.enqueue_job(
        "send_email", to="now@example.com", subject="Now", text="right away", _job_id="mail-1"
    )
    assert job is not None
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    result = await job.result(timeout=1)
    assert result["status"] == "sent"
    assert len(smtp_server.messages) == 1
    await pool.delete("arq:result:mail-1")
    await pool.enqueue_job(
        "send_email", to="now@example.com", subject="Now", text="right away", _job_id="mail-1"
    )
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    assert (await (await pool.job("mail-1")).result(timeout=1))["status"] == "sent"
    assert len(smtp_server.messages) == 1
    assert len(await rows(sessions)) == 1


async def test_stale_claim_of_a_crashed_worker_is_taken_over(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """A row left 'sending' by a crashed worker is claimed again once its lease has passed."""
    [email_id] = await queue(sessions, "orphan@example.com")
    async with sessions.begin() as session:
        await session.execute(
            update(OutboundEmail).values(
                status=EmailStatus.SENDING,
                claim_token="dead",
                claimed_until=utcnow() - dt.timedelta(seconds=5),
            )
        )
    job = await pool.enqueue_job("deliver_email", email_id=email_id)
    assert job is not None
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    assert (await job.result(timeout=1))["status"] == "sent"
    assert len(smtp_server.messages) == 1


async def test_daily_summary_is_queued_once_per_user_and_date(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
) -> None:
    """Two runs of send_daily_email_summary queue one summary per opted-in user, and send them."""
    noon = zone_at_local_hour(12)  # past 08:00 for both users whatever the time of the test
    async with sessions.begin() as session:
        session.add_all(
            [
                User(email="ann@example.com", display_name="Ann", timezone=noon),
                User(email="bob@example.com", display_name="Bob <&>", timezone=noon),
                User(email="cy@example.com", daily_summary_enabled=False),
            ]
        )
    first = await pool.enqueue_job("send_daily_email_summary", _job_id="summary-1")
    second = await pool.enqueue_job("send_daily_email_summary", _job_id="summary-2")
    assert first is not None and second is not None
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    results = [await first.result(timeout=1), await second.result(timeout=1)]
    assert sorted(r["queued"] for r in results) == [0, 2]
    assert sorted(r["already_queued"] for r in results) == [0, 2]
    received = {str(m["To"]): m for m in smtp_server.messages}
    assert sorted(received) == ["ann@example.com", "bob@example.com"]
    bob = received["bob@example.com"]
    assert "Hello Bob <&>," in bob.get_body(("plain",)).get_content()
    assert "Hello Bob &lt;&amp;&gt;," in bob.get_body(("html",)).get_content()


async def test_summary_gains_a_section_from_the_outbox(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """E-mails the assistant sent a user yesterday appear as a section of today's summary."""
    from zoneinfo import ZoneInfo

    from jobs.email.summary import SummaryWindow, build_summary

    zone = ZoneInfo("Europe/Berlin")
    window = SummaryWindow(day=dt.date(2026, 3, 29), zone=zone)
    async with sessions.begin() as session:
        user = User(email="ann@example.com", display_name="Ann")
        session.add(user)
        await session.flush()
        for subject, status, created in [
            ("Report ready", EmailStatus.SENT, window.start - dt.timedelta(hours=3)),
            ("Bounced", EmailStatus.FAILED, window.start - dt.timedelta(hours=2)),
            ("Too old", EmailStatus.SENT, window.start - dt.timedelta(days=2)),
        ]:
            session.add(
                OutboundEmail(
                    user_id=user.id,
                    to_address=user.email,
                    subject=subject,
                    body_text="x",
                    status=status,
                    created_at=created,
                )
            )
    async with sessions() as session:
        summary = await build_summary(session, user, window)
    # the window is the local day: 23 hours long on the spring-forward day
    assert window.end - window.start == dt.timedelta(hours=23)
    [section] = summary.sections
    assert section.lines == ("Report ready", "Bounced (could not be delivered)")
    assert "* Report ready" in summary.text


async def test_summary_shows_the_days_events_tasks_and_pages_in_order(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Calendar (all-day kept on its date), due AI tasks and edited pages form ordered sections."""
    from zoneinfo import ZoneInfo

    from jobs.db import AiTask, CalendarEvent, GoogleAccount, NotionIntegration, NotionPage
    from jobs.email.summary import SummaryWindow, build_summary

    zone = ZoneInfo("America/New_York")
    window = SummaryWindow(day=dt.date(2026, 11, 28), zone=zone)
    at = lambda h, m=0: dt.datetime(2026, 11, 28, h, m, tzinfo=zone)  # noqa: E731
    async with sessions.begin() as session:
        user = User(email="ann@example.com", display_name="Ann", timezone="America/New_York")
        other = User(email="bob@example.com")
        session.add_all([user, other])
        await session.flush()
        account = GoogleAccount(user_id=user.id)
        notion = NotionIntegration(user_id=user.id)
        session.add_all([account, notion])
        await session.flush()

        def event(remote: str, **fields: object) -> CalendarEvent:
            return CalendarEvent(
                user_id=user.id,
                account_id=account.id,
                calendar_id="primary",
                remote_id=remote,
                **fields,
            )

        session.add_all(
            [
                event(
                    "e1", summary="Dentist", starts_at=at(9, 30), ends_at=at(10), location="Main St"
                ),
                event(
                    "e2",
                    summary="Holiday",
                    all_day=True,
                    start_date=dt.date(2026, 11, 28),
                    end_date=dt.date(2026, 11, 29),
                ),
                event(
                    "e3",
                    summary="Tomorrow",
                    all_day=True,
                    start_date=dt.date(2026, 11, 29),
                    end_date=dt.date(2026, 11, 30),
                ),
                event(
                    "e4", summary="Cancelled", status="cancelled", starts_at=at(11), ends_at=at(12)
                ),
                AiTask(
                    user_id=user.id, title="Summarise inbox", instruction="…", next_run_at=at(7, 30)
                ),
                AiTask(user_id=other.id, title="Not Ann's", instruction="…", next_run_at=at(8)),
                NotionPage(
                    user_id=user.id,
                    integration_id=notion.id,
                    remote_id="p1",
                    title="Trip plan",
                    last_edited_time=window.start - dt.timedelta(hours=5),
                ),
            ]
        )
    async with sessions() as session:
        summary = await build_summary(session, user, window)
    assert [(s.title, s.lines) for s in summary.sections] == [
        ("Today's calendar", ("All day: Holiday", "09:30 Dentist (Main St)")),
        ("Your assistant will", ("07:30 Summarise inbox",)),
        ("Notion pages edited yesterday", ("Trip plan",)),
    ]
