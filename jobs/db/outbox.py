"""Putting e-mails into the outbox, for any family: the email family delivers them.

Queueing lives with the data rather than in the email family, so that other families (an AI
task e-mailing its user) queue mail the same way without importing the email family.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.db.base import utcnow
from jobs.db.models import EmailStatus, OutboundEmail
from jobs.db.upsert import insert_ignoring_conflicts
from jobs.storable import require_storable

__all__ = ["outbox_row", "queue_email"]


def outbox_row(
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    user_id: int | None = None,
    dedupe_key: str | None = None,
    send_after: dt.datetime | None = None,
) -> dict[str, Any]:
    """The column values of one queued e-mail (for bulk inserts of many).

    Raises :class:`jobs.errors.UnstorableTextError` naming a field that holds a character the
    database cannot store (NUL, a lone surrogate).
    """
    require_storable(to=to, subject=subject, text=text, html=html, dedupe_key=dedupe_key)
    now = utcnow()
    return {
        "to_address": to,
        "subject": subject,
        "body_text": text,
        "body_html": html,
        "user_id": user_id,
        "dedupe_key": dedupe_key,
        "status": EmailStatus.QUEUED,
        "attempts": 0,
        "next_attempt_at": send_after or now,
        "created_at": now,
    }


async def queue_email(
    session: AsyncSession,
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    user_id: int | None = None,
    dedupe_key: str | None = None,
    send_after: dt.datetime | None = None,
) -> int:
    """Put one e-mail in the outbox and return its id.

    With ``dedupe_key``, queueing is idempotent: a second call with the same key queues nothing
    and returns the id of the e-mail queued first. The caller commits. A field holding a
    character the database cannot store raises :class:`jobs.errors.UnstorableTextError`
    naming the field, and nothing is queued.
    """
    row = outbox_row(
        to=to,
        subject=subject,
        text=text,
        html=html,
        user_id=user_id,
        dedupe_key=dedupe_key,
        send_after=send_after,
    )
    if dedupe_key is None:
        email = OutboundEmail(**row)
        session.add(email)
        await session.flush()
        return email.id
    await session.execute(
        insert_ignoring_conflicts(session.bind.dialect.name, OutboundEmail, [row])
    )
    email_id = await session.scalar(
        select(OutboundEmail.id).where(OutboundEmail.dedupe_key == dedupe_key)
    )
    assert email_id is not None
    return email_id
