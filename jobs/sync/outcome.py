"""How one account's run ends: recorded on the account, counted, logged and reported.

Shared by the Google and Notion runs: the rate-limited sender they send through, what a
failure does to the account (``needs_reconsent``; ``error`` with its next try; a note after the
last try of a transient failure), and the answer of a run a newer one has overtaken.
"""

from __future__ import annotations

import logging
from typing import Any

from jobs.context import JobContext
from jobs.db.sync_models import AccountState, GoogleAccount, NotionIntegration
from jobs.errors import TransientJobError
from jobs.ratelimit import SharedRateLimiter
from jobs.sync.accounts import record_error, record_outcome
from jobs.sync.errors import AccountSyncError, ReconsentRequired
from jobs.sync.generation import SyncSuperseded
from jobs.sync.observability import count_account_run
from jobs.sync.transport import RetryingSender

__all__ = ["provider_of", "run_failed", "sender", "skipped", "superseded"]

logger = logging.getLogger("jobs.sync")


def provider_of(account: GoogleAccount | NotionIntegration) -> str:
    """``google`` or ``notion``: the provider label of metrics and messages."""
    return "google" if isinstance(account, GoogleAccount) else "notion"


def sender(ctx: JobContext, limit: str, rate: float, burst: int) -> RetryingSender:
    """The retrying sender of one run, under the shared rate limit ``limit``."""
    limiter = SharedRateLimiter(ctx.pool, limit, rate=rate, burst=burst)
    return RetryingSender.for_settings(ctx.http, limiter, ctx.settings)


def skipped(account: GoogleAccount | NotionIntegration | None) -> dict[str, Any]:
    """The answer for an account that is not synced now (missing, or not due)."""
    if account is None:
        return {"status": "skipped", "state": "missing"}
    answer: dict[str, Any] = {"status": "skipped", "state": account.state.value}
    if account.state is AccountState.ERROR and account.next_attempt_at is not None:
        answer["next_attempt_at"] = account.next_attempt_at.isoformat()
    return answer


def superseded(account: GoogleAccount | NotionIntegration, error: SyncSuperseded) -> dict[str, Any]:
    """The answer of a run that stopped because a newer run of the account has started."""
    logger.warning("%s account %d: run stopped, %s", provider_of(account), account.id, error)
    return {"status": "superseded", "error": str(error)}


async def run_failed(
    ctx: JobContext, account: GoogleAccount | NotionIntegration, error: Exception
) -> dict[str, Any]:
    """Record a failed run on the account; re-raise what the job's policy should see.

    Re-consent is reported as the job's failure (``ReconsentRequired``) without retrying. Other
    account errors put the account in ``error`` with its next try scheduled and fail the job.
    """
    provider = provider_of(account)
    message = ctx.redact(str(error))
    if isinstance(error, ReconsentRequired):
        await record_outcome(
            ctx.sessions,
            type(account),
            account.id,
            state=AccountState.NEEDS_RECONSENT,
            error=message,
            next_attempt_at=None,
        )
        logger.warning("%s account %d needs re-consent: %s", provider, account.id, message)
        count_account_run(provider, AccountState.NEEDS_RECONSENT.value)
        ctx.report_failure("ReconsentRequired", message)
        return {"status": AccountState.NEEDS_RECONSENT.value, "error": message}
    if isinstance(error, AccountSyncError):
        next_attempt = await record_error(ctx.sessions, ctx.settings, account, message)
        logger.warning(
            "%s account %d in error, next try at %s: %s",
            provider,
            account.id,
            next_attempt.isoformat(timespec="seconds"),
            message,
        )
        count_account_run(provider, AccountState.ERROR.value)
        raise error
    if isinstance(error, TransientJobError) and ctx.is_last_try:
        await record_outcome(ctx.sessions, type(account), account.id, error=f"gave up: {message}")
    raise error
