"""Delivery outcomes the database could not take, kept in Redis until it is back.

An e-mail handed to the SMTP server while the database goes away must not stay ``sending``:
once its claim lapsed a sweep would send it again. :func:`record_or_keep` writes the outcomes
as usual, and when the database is unreachable keeps them in the dead-letter list
(:mod:`jobs.dead_letters`); a worker writes them when the database is back, to rows still
held by the same claim only (a row claimed anew since is left to its new holder).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from jobs.context import JobContext
from jobs.db.models import EmailStatus, OutboundEmail, utcnow
from jobs.db.outage import DATABASE, is_database_unreachable
from jobs.dead_letters import DeadLetter, DeadLetters, register_writer
from jobs.email.outbox import Outcome, record_outcomes

__all__ = ["OUTCOMES_KIND", "record_or_keep"]

OUTCOMES_KIND: Final = "email_outcomes"


def _as_data(outcome: Outcome, claim_token: str | None) -> dict[str, Any]:
    return {
        "id": outcome.email_id,
        "claim_token": claim_token,
        "status": outcome.status.value,
        "attempts": outcome.attempts,
        "last_error": outcome.error,
        "retry_at": outcome.retry_at.isoformat() if outcome.retry_at else None,
        "at": utcnow().isoformat(),
    }


async def record_or_keep(
    ctx: JobContext,
    claim_token: str,
    outcomes: Sequence[Outcome],
    connection: AsyncConnection | None = None,
) -> None:
    """Write the outcomes of claim ``claim_token``; if the database is unreachable, keep them.

    One transaction, on ``connection`` if one is given. Re-raises the error after keeping.
    """
    try:
        if connection is None:
            async with ctx.engine.begin() as own:
                await record_outcomes(own, outcomes, claim_token)
        else:
            async with connection.begin():
                await record_outcomes(connection, outcomes, claim_token)
    except Exception as exc:
        if not outcomes or not is_database_unreachable(exc):
            raise
        DATABASE.unreachable(exc)
        letters = DeadLetters(ctx.pool, ctx.settings.dead_letter_max_entries)
        rows = [_as_data(outcome, claim_token) for outcome in outcomes]
        await letters.keep(OUTCOMES_KIND, {"rows": rows})
        raise


async def _write_kept(session: AsyncSession, letter: DeadLetter) -> None:
    """Apply kept outcomes to rows still under the claim they were sent with."""
    for row in letter.data["rows"]:
        status = EmailStatus(row["status"])
        at = dt.datetime.fromisoformat(row["at"])
        values: dict[str, Any] = {
            "status": status,
            "attempts": row["attempts"],
            "last_error": row["last_error"],
            "claim_token": None,
            "claimed_until": None,
            "sent_at": at if status is EmailStatus.SENT else None,
            "failed_at": at if status is EmailStatus.FAILED else None,
        }
        if row["retry_at"]:
            values["next_attempt_at"] = dt.datetime.fromisoformat(row["retry_at"])
        await session.execute(
            update(OutboundEmail)
            .where(
                OutboundEmail.id == row["id"],
                OutboundEmail.status == EmailStatus.SENDING,
                OutboundEmail.claim_token == row["claim_token"],
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )


register_writer(OUTCOMES_KIND, _write_kept)
