"""The outbox: claiming due e-mails, renewing claims, and recording what became of them.

E-mails are queued with :func:`jobs.db.outbox.queue_email` (re-exported here and from
:mod:`jobs.email`).

Claiming is one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: on
PostgreSQL concurrent sweeps skip each other's rows; on SQLite the single statement is atomic
because SQLite has one writer at a time. A claim is a short lease under a token of its own:
its holder renews it while it lives (:mod:`jobs.email.leases`), and a row whose lease has
passed — its holder died or stalled — is claimable again, under a new token. Renewals and
outcomes are written only where the row still carries the writer's token, so a holder whose
claim was taken over can neither revive it nor overwrite the new holder's outcome.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BindParameter, Table, Update, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from jobs.db.models import EmailStatus, OutboundEmail, utcnow
from jobs.db.outbox import queue_email

__all__ = [
    "Claim",
    "Outcome",
    "claim_due",
    "earliest_lease_end",
    "queue_email",
    "record_outcomes",
    "renew_claims",
]


@dataclass(frozen=True)
class Claim:
    """E-mails claimed together under one token, for ``lease`` seconds unless renewed."""

    token: str
    emails: list[OutboundEmail]


async def claim_due(
    session: AsyncSession,
    *,
    limit: int,
    lease: float,
    only_id: int | None = None,
) -> Claim:
    """Claim up to ``limit`` due e-mails (or just ``only_id``) for ``lease`` seconds.

    Due: queued and its time has come, or being sent under a lease that has passed. The caller
    commits right away so other sweeps see the claim.
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
    token = secrets.token_hex(8)
    claimed = await session.scalars(
        update(OutboundEmail)
        .where(OutboundEmail.id.in_(candidates.scalar_subquery()))
        .values(
            status=EmailStatus.SENDING,
            claim_token=token,
            claimed_until=now + dt.timedelta(seconds=lease),
        )
        .returning(OutboundEmail)
        .execution_options(synchronize_session=False)
    )
    return Claim(token, sorted(claimed, key=lambda e: e.id))


async def renew_claims(session: AsyncSession, tokens: Sequence[str], lease: float) -> int:
    """Extend every unexpired claim under ``tokens`` to ``lease`` seconds from now.

    One statement for all of them; the number of rows renewed. An expired claim is not revived.
    """
    if not tokens:
        return 0
    now = utcnow()
    result = await session.execute(
        update(OutboundEmail)
        .where(
            OutboundEmail.claim_token.in_(tokens),
            OutboundEmail.status == EmailStatus.SENDING,
            OutboundEmail.claimed_until >= now,
        )
        .values(claimed_until=now + dt.timedelta(seconds=lease))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def earliest_lease_end(session: AsyncSession) -> dt.datetime | None:
    """When the first claim held now runs out, if any e-mail is being sent."""
    return await session.scalar(
        select(func.min(OutboundEmail.claimed_until)).where(
            OutboundEmail.status == EmailStatus.SENDING
        )
    )


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


_TABLE = cast(Table, OutboundEmail.__table__)


async def record_outcomes(
    session: AsyncSession | AsyncConnection, outcomes: Sequence[Outcome], token: str
) -> None:
    """Write the outcomes of delivery attempts back to their rows.

    One executemany per set of columns; each row only where it is still claimed under ``token``.
    """
    if not outcomes:
        return
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        row: dict[str, Any] = {
            "b_id": outcome.email_id,
            "b_token": token,
            "status": outcome.status,
            "attempts": outcome.attempts,
            "last_error": outcome.error,
            "sent_at": now if outcome.status is EmailStatus.SENT else None,
            "failed_at": now if outcome.status is EmailStatus.FAILED else None,
        }
        if outcome.retry_at is not None:
            row["next_attempt_at"] = outcome.retry_at
        rows.append(row)
    # group rows by key set: executemany needs the same columns in every row
    for keys in {tuple(sorted(r)) for r in rows}:
        batch = [r for r in rows if tuple(sorted(r)) == keys]
        await session.execute(_outcome_update(keys), batch)


@functools.cache
def _outcome_update(keys: tuple[str, ...]) -> Update:
    """The UPDATE writing one outcome, for rows with the parameters ``keys``."""
    values: dict[str, BindParameter[Any]] = {
        key: bindparam(key) for key in keys if not key.startswith("b_")
    }
    return (
        _TABLE.update()
        .where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.claim_token == bindparam("b_token"))
        .values(claim_token=None, claimed_until=None, **values)
    )
