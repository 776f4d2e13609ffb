"""The email family's jobs: immediate sends, the outbox sweep, and the daily summary."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from pydantic import Field

from jobs.context import JobContext
from jobs.db.models import EmailStatus, OutboundEmail, utcnow
from jobs.email.daily import queue_due_summaries
from jobs.email.kept_outcomes import record_or_keep
from jobs.email.observability import count_deliveries, failure_type
from jobs.email.outbox import claim_due, queue_email
from jobs.email.smtp import deliver
from jobs.registry import job
from jobs.retry import RetryPolicy

__all__ = [
    "deliver_email",
    "process_email_queue",
    "send_daily_email_summary",
    "send_email",
]

logger = logging.getLogger(__name__)

Address = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


async def _deliver_claimed(ctx: JobContext, only_id: int | None = None) -> dict[str, int]:
    settings = ctx.settings
    async with ctx.sessions.begin() as session:
        claimed = await claim_due(
            session,
            limit=1 if only_id is not None else settings.email_batch_size,
            lease=settings.email_claim_timeout,
            only_id=only_id,
        )
    outcomes = await deliver(settings, claimed) if claimed else []
    await record_or_keep(ctx, claimed, outcomes)
    delivered = count_deliveries(outcomes)
    return {
        "claimed": len(claimed),
        "sent": delivered["sent"],
        "retry": delivered["deferred"],
        "failed": delivered["bounced"] + delivered["failed"],
    }


@job(family="email", timeout=60, retry=RetryPolicy(max_tries=5, backoff_base=2.0))
async def send_email(
    ctx: JobContext,
    to: Address,
    subject: Annotated[str, Field(max_length=998)],
    text: str,
    html: str | None = None,
    user_id: int | None = None,
) -> dict[str, Any]:
    """Queue one e-mail and deliver it now; a re-run of the same job never sends it twice.

    If the SMTP server answers "try later", the e-mail stays in the outbox and the sweep
    (``process_email_queue``) tries it again with backoff.
    """
    async with ctx.sessions.begin() as session:
        email_id = await queue_email(
            session,
            to=to,
            subject=subject,
            text=text,
            html=html,
            user_id=user_id,
            dedupe_key=f"job:{ctx.job_id}",
        )
    return {"email_id": email_id, **await _deliver_email_row(ctx, email_id)}


async def _deliver_email_row(ctx: JobContext, email_id: int) -> dict[str, Any]:
    counts = await _deliver_claimed(ctx, only_id=email_id)
    async with ctx.sessions() as session:
        row = await session.get(OutboundEmail, email_id)
    if row is None:
        return {"status": "missing"}
    result: dict[str, Any] = {"status": row.status.value, "attempts": row.attempts}
    if row.last_error:
        result["error"] = row.last_error
    if row.status is EmailStatus.FAILED:
        ctx.report_failure(failure_type(row.last_error), row.last_error or "failed")
    if not counts["claimed"] and row.status is EmailStatus.SENDING:
        result["status"] = "being sent by another worker"
    return result


@job(family="email", timeout=60, retry=RetryPolicy(max_tries=5, backoff_base=2.0))
async def deliver_email(ctx: JobContext, email_id: int) -> dict[str, Any]:
    """Deliver one e-mail already in the outbox now instead of at the next sweep."""
    return {"email_id": email_id, **await _deliver_email_row(ctx, email_id)}


@job(family="email", retry=RetryPolicy(max_tries=3, backoff_base=10.0))
async def process_email_queue(ctx: JobContext) -> dict[str, int]:
    """Deliver every due e-mail in the outbox, batch by batch, until none is due."""
    totals = {"claimed": 0, "sent": 0, "retry": 0, "failed": 0, "batches": 0}
    started = time.monotonic()
    budget = 0.8 * ctx.settings.email_worker.job_timeout
    while time.monotonic() - started < budget:
        counts = await _deliver_claimed(ctx)
        if not counts["claimed"]:
            break
        totals["batches"] += 1
        for key, value in counts.items():
            totals[key] += value
    return totals


@job(family="email", retry=RetryPolicy(max_tries=3, backoff_base=30.0))
async def send_daily_email_summary(ctx: JobContext) -> dict[str, int]:
    """Queue the summary of every opted-in user whose local 08:00 has come, once per local day.

    Runs every 15 minutes; see :mod:`jobs.email.daily`.
    """
    counts = await queue_due_summaries(
        ctx.sessions, now=utcnow(), fallback_zone=ctx.settings.timezone
    )
    if counts["queued"]:
        await ctx.pool.enqueue_job("process_email_queue")
    return counts
