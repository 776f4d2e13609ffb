"""Queueing a transactional e-mail in the caller's own transaction (the outbox).

The e-mail is a row of ``outbound_emails`` written in the caller's session: it is sent if and
only if the caller's transaction commits — an order confirmation and its e-mail stand or fall
together. Once committed, ``deliver_email`` is enqueued so it goes out at once; should that
enqueue be lost, the outbox sweep (``process_email_queue``, every 5 minutes) sends it. With a
``dedupe_key`` a retried request queues one e-mail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from pydantic import AwareDatetime, Field, PositiveInt
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.api.after_commit import enqueue_after_commit
from jobs.api.validation import ApiModel, checked
from jobs.client import JobsPool
from jobs.db.base import utcnow
from jobs.db.engine import bind_session
from jobs.db.outbox import queue_email
from jobs.settings import Settings

__all__ = ["EmailMessage", "QueuedEmail", "queue_transactional_email"]


class EmailMessage(ApiModel):
    """One e-mail to queue."""

    to: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    subject: Annotated[str, Field(min_length=1, max_length=998)]
    text: Annotated[str, Field(max_length=1_000_000)]
    html: Annotated[str, Field(max_length=2_000_000)] | None = None
    user_id: PositiveInt | None = None
    dedupe_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    send_after: AwareDatetime | None = None


@dataclass(frozen=True)
class QueuedEmail:
    """The outbox row, and the id of the job that delivers it after the commit (if due now)."""

    email_id: int
    delivery_job_id: str | None


async def queue_transactional_email(
    session: AsyncSession,
    pool: JobsPool,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    user_id: int | None = None,
    dedupe_key: str | None = None,
    send_after: dt.datetime | None = None,
    settings: Settings | None = None,
) -> QueuedEmail:
    """Put an e-mail in the outbox within the caller's transaction; delivered after the commit.

    Raises :class:`jobs.api.InvalidInputError` (nothing written) for a bad address, an empty
    subject, text a database cannot store, or a naive ``send_after``. An e-mail to send later
    waits for the sweep; a repeated ``dedupe_key`` returns the first e-mail's id.
    """
    message = checked(
        EmailMessage,
        {
            "to": to,
            "subject": subject,
            "text": text,
            "html": html,
            "user_id": user_id,
            "dedupe_key": dedupe_key,
            "send_after": send_after,
        },
    )
    await bind_session(session, settings)
    email_id = await queue_email(session, **message.model_dump())
    if message.send_after is not None and message.send_after > utcnow():
        return QueuedEmail(email_id, None)
    job_id = enqueue_after_commit(
        session, pool, "deliver_email", _job_id=f"deliver_email:{email_id}", email_id=email_id
    )
    return QueuedEmail(email_id, job_id)
