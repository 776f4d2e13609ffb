"""E-mail contents a real SMTP server accepts and PostgreSQL can store, on SQLite and PostgreSQL."""

from __future__ import annotations

import aiosmtplib
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.constants import queue_name
from jobs.db import EmailStatus, OutboundEmail
from jobs.email import deliver_email, process_email_queue, queue_email, send_email
from jobs.errors import JobArgumentsError, UnstorableTextError
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.smtp_server import SmtpServer

EMAIL_JOBS = [send_email, deliver_email, process_email_queue]
# a long AI paragraph: 5,000 characters, no line break
PARAGRAPH = ("The meeting moved to Thursday; bring the draft and the numbers. " * 80)[:5000]


async def test_server_refuses_a_line_longer_than_998_characters(smtp_server: SmtpServer) -> None:
    """The test server answers a 999-character line with 500, as Postfix or Gmail would."""
    message = b"Subject: long\r\n\r\n" + b"x" * 999 + b"\r\n"
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_server.port) as client:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.sendmail("a@example.com", ["b@example.com"], message)
    assert refused.value.code == 500 and "Line too long" in refused.value.message
    assert smtp_server.messages == []


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("body", [PARAGRAPH, "x" * 5000, "é" * 5000], ids=["words", "x", "é"])
async def test_one_line_bodies_of_5000_characters_arrive_intact(
    pool: JobsPool,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    smtp_server: SmtpServer,
    body: str,
) -> None:
    """Text and HTML parts and a 998-character subject on one line each are sent and decode back."""
    subject = "S" * 998
    html = f"<html><body><p>{body}</p></body></html>"
    async with sessions.begin() as session:
        await queue_email(session, to="ann@example.com", subject=subject, text=body, html=html)
    await pool.enqueue_job("process_email_queue")
    await run_burst(await make_worker(settings, EMAIL_JOBS))
    async with sessions() as session:
        row = await session.scalar(select(OutboundEmail))
    assert row is not None
    assert (row.status, row.last_error) == (EmailStatus.SENT, None)
    [message] = smtp_server.messages
    assert message["Subject"] == subject
    assert message.get_body(("plain",)).get_content() == body
    assert message.get_body(("html",)).get_content() == html


@pytest.mark.parametrize("field", ["text", "html", "subject", "to"])
async def test_send_email_with_a_nul_character_is_refused_at_enqueue(
    pool: JobsPool, field: str
) -> None:
    """A NUL in send_email's text, html, subject or address raises naming it; nothing is queued."""
    arguments = {"to": "ann@example.com", "subject": "Hi", "text": "body", "html": "<p>body</p>"}
    arguments[field] = arguments[field].replace("@", "\x00@") if field == "to" else "a\x00b"
    with pytest.raises(JobArgumentsError, match=rf"{field}: .*NUL character \(U\+0000\)") as error:
        await pool.enqueue_job("send_email", **arguments)
    assert [e["loc"] for e in error.value.errors] == [(field,)]
    assert await pool.zcard(queue_name("email")) == 0


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize("field", ["text", "html", "subject"])
async def test_queue_email_with_an_unstorable_character_is_refused_naming_the_field(
    sessions: async_sessionmaker[AsyncSession], field: str
) -> None:
    """queue_email refuses NUL (and a lone surrogate) in a field with its name; no row is added."""
    for bad in ("a\x00b", "a\ud800b"):
        arguments = {"to": "ann@example.com", "subject": "Hi", "text": "body", "html": "<p>b</p>"}
        arguments[field] = bad
        with pytest.raises(UnstorableTextError, match=rf"^{field}: contains") as error:
            async with sessions.begin() as session:
                await queue_email(session, **arguments)
        assert error.value.field == field
    async with sessions() as session:
        assert list(await session.scalars(select(OutboundEmail))) == []
