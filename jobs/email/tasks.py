"""The email family's jobs: immediate sends, the outbox sweep, and the daily summary.

Every delivery claims its rows for a short lease its worker renews while it sends
(:mod:`jobs.email.leases`) and records each e-mail's outcome as it is known
(:mod:`jobs.email.recorder`). An immediate send whose e-mail is claimed by another live worker
tries again when that claim's lease ends, and takes it over if it was not renewed; a sweep
that leaves e-mails claimed elsewhere enqueues another sweep for when the first of those
leases ends, so the e-mails of a worker that died go out within about one lease.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Annotated, Any

from pydantic import Field

from jobs.context import JobContext
from jobs.db.models import EmailStatus, OutboundEmail, utcnow
from jobs.email.daily import queue_due_summaries
from jobs.email.kept_outcomes import record_or_keep
from jobs.email.leases import claim_keeper
from jobs.email.observability import count_deliveries, failure_type
from jobs.email.outbox import claim_due, earliest_lease_end, queue_email
from jobs.email.recorder import OutcomeRecorder
from jobs.email.smtp import deliver
from jobs.errors import TransientJobError
from jobs.registry import job
from jobs.retry import RetryPolicy

__all__ = [
    "EmailClaimedElsewhere",
    "deliver_email",
    "process_email_queue",
    "send_daily_email_summary",
    "send_email",
]

logger = logging.getLogger(__name__)

Address = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


#: Seconds past a lease's end at which its e-mail is looked at again.
LEASE_MARGIN = 1.0


class EmailClaimedElsewhere(TransientJobError):
    """The e-mail is being sent by another worker, whose claim has not run out yet.

    The job tries again when the claim's lease ends (``retry_after``).
    """

    def __init__(self, email_id: int, held_for: float) -> None:
        self.email_id = email_id
        super().__init__(
            f"e-mail {email_id} is being sent by another worker, "
            f"whose claim runs {held_for:.1f} s more",
            retry_after=max(0.0, held_for) + LEASE_MARGIN,
        )


async def _deliver_claimed(ctx: JobContext, only_id: int | None = None) -> dict[str, int]:
    settings = ctx.settings
    keeper = claim_keeper(ctx.sessions, settings.email_claim_lease)
    started = time.monotonic()
    async with ctx.sessions.begin() as session:
        claim = await claim_due(
            session,
            limit=1 if only_id is not None else settings.email_batch_size,
            lease=settings.email_claim_lease,
            only_id=only_id,
        )
    outcomes = []
    if claim.emails:
        async with keeper.hold(claim.token, since=started) as held:
            recorder = OutcomeRecorder(
                held,
                ctx.engine,
                lambda batch, connection: record_or_keep(ctx, claim.token, batch, connection),
            )
            outcomes = await deliver(
                settings, claim.emails, record=recorder.record, sendable=held.sendable
            )
    delivered = count_deliveries(outcomes)
    return {
        "claimed": len(claim.emails),
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
    (``process_email_queue``) tries it again with backoff. If another worker's claim holds it
    (a sweep sending it, or a worker that died), the job tries again when that claim ends.
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
    await _deliver_claimed(ctx, only_id=email_id)
    async with ctx.sessions() as session:
        row = await session.get(OutboundEmail, email_id)
    if row is None:
        return {"status": "missing"}
    result: dict[str, Any] = {"status": row.status.value, "attempts": row.attempts}
    if row.last_error:
        result["error"] = row.last_error
    if row.status is EmailStatus.FAILED:
        ctx.report_failure(failure_type(row.last_error), row.last_error or "failed")
    if row.status is EmailStatus.SENDING:
        held_for = (row.claimed_until - utcnow()).total_seconds() if row.claimed_until else 0.0
        if not ctx.is_last_try:
            raise EmailClaimedElsewhere(email_id, held_for)
        result["held_for_s"] = round(held_for, 1)
    return result


@job(family="email", timeout=60, retry=RetryPolicy(max_tries=5, backoff_base=2.0))
async def deliver_email(ctx: JobContext, email_id: int) -> dict[str, Any]:
    """Deliver one e-mail already in the outbox now instead of at the next sweep."""
    return {"email_id": email_id, **await _deliver_email_row(ctx, email_id)}


@job(family="email", retry=RetryPolicy(max_tries=3, backoff_base=10.0))
async def process_email_queue(ctx: JobContext) -> dict[str, int]:
    """Deliver every due e-mail in the outbox, batch by batch, until none is due.

    E-mails left claimed by other workers are swept again when the first of those claims ends.
    """
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
    async with ctx.sessions() as session:
        lease_end = await earliest_lease_end(session)
    if lease_end is not None:
        await _sweep_again_after(ctx, lease_end)
    return totals


async def _sweep_again_after(ctx: JobContext, lease_end: dt.datetime) -> None:
    """Enqueue a sweep for just after ``lease_end``; sweeps due within a second share one."""
    at = lease_end + dt.timedelta(seconds=LEASE_MARGIN)
    await ctx.pool.enqueue_job(
        "process_email_queue", _job_id=f"email-lease-sweep:{int(at.timestamp())}", _defer_until=at
    )


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
