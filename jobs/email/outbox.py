"""The outbox: claiming due e-mails and recording what became of them.

E-mails are queued with :func:`jobs.db.outbox.queue_email` (re-exported here and from
:mod:`jobs.email`).

Claiming is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on
PostgreSQL concurrent sweeps skip each other's rows; on SQLite the single statement is atomic
because SQLite has one writer at a time. A claim is a lease: a row left ``sending`` by a
crashed worker becomes claimable again once ``claimed_until`` has passed.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.db.models import EmailStatus, OutboundEmail, utcnow
from jobs.db.outbox import queue_email

__all__ = ["Outcome", "claim_due", "queue_email", "record_outcomes"]


async def claim_due(
    session: AsyncSession,
    *,
    limit: int,
    lease: float,
    only_id: int | None = None,
) -> list[OutboundEmail]:
    """Claim up to ``limit`` due e-mails (or just ``only_id``) for ``lease`` seconds.

    The caller commits right away so other sweeps see the claim.
    """
    now = utcnow()
    due = or_(
        (OutboundEmail.status == EmailStatus.QUEUED) & (OutboundEmail.next_attempt_at <= now),
        (OutboundEmail.status == EmailStatus.SENDING) & (OutboundEmail.claimed_until < now),
    )
    candidates = select(OutboundEmail.id).where(due)
    if only_id is not None:
        candidates = candidates.where(OutboundEmail.id == only_id)
    candidates = (
        candidates.order_by(OutboundEmail.next_attempt_at, OutboundEmail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.scalars(
        update(OutboundEmail)
        .where(OutboundEmail.id.in_(candidates.scalar_subquery()))
        .values(
            status=EmailStatus.SENDING,
            claim_token=secrets.token_hex(8),
            claimed_until=now + dt.timedelta(seconds=lease),
        )
        .returning(OutboundEmail)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed, key=lambda e: e.id)


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt of one e-mail came to."""

    email_id: int
    status: EmailStatus
    attempts: int
    error: str | None = None
    retry_at: dt.datetime | None = None
    #: The SMTP server's reply code, when the server answered.
    reply_code: int | None = None


async def record_outcomes(session: AsyncSession, outcomes: Sequence[Outcome]) -> None:
    """Write the outcomes of delivery attempts back to their rows (one executemany)."""
    if not outcomes:
        return
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        row: dict[str, Any] = {
            "id": outcome.email_id,
            "status": outcome.status,
            "attempts": outcome.attempts,
            "last_error": outcome.error,
            "claim_token": None,
            "claimed_until": None,
            "sent_at": now if outcome.status is EmailStatus.SENT else None,
            "failed_at": now if outcome.status is EmailStatus.FAILED else None,
        }
        if outcome.retry_at is not None:
            row["next_attempt_at"] = outcome.retry_at
        rows.append(row)
    # group rows by key set: executemany needs the same columns in every row
    for keys in {tuple(sorted(r)) for r in rows}:
        batch = [r for r in rows if tuple(sorted(r)) == keys]
        await session.execute(update(OutboundEmail), batch)
