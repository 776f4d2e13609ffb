"""The sync family's jobs: hourly/two-hourly fan-out, and one account's sync on demand.

An account's sync runs under its lease (:mod:`jobs.sync.lease`): a request for an account
whose sync is running is answered ``coalesced`` and makes the running one go once more.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from jobs.context import JobContext
from jobs.db.base import utcnow
from jobs.db.sync_models import AccountState, GoogleAccount, NotionIntegration
from jobs.errors import TransientJobError
from jobs.ratelimit import SharedRateLimiter
from jobs.registry import job
from jobs.retry import RetryPolicy
from jobs.sync.accounts import active_ids, calendars_of, record_calendar_error, record_outcome
from jobs.sync.calendar import sync_calendar
from jobs.sync.errors import AccountSyncError, CalendarSyncError, ReconsentRequired
from jobs.sync.generation import SyncSuperseded
from jobs.sync.google import GoogleAuth, GoogleCalendarClient
from jobs.sync.lease import SyncLease, run_exclusively
from jobs.sync.notion import NotionClient
from jobs.sync.observability import count_account_run, count_restarts
from jobs.sync.pages import sync_pages
from jobs.sync.tokens import cipher_from_settings
from jobs.sync.transport import RetryingSender

__all__ = [
    "sync_calendar_account",
    "sync_calendar_events",
    "sync_notion_integration",
    "sync_notion_pages",
]

logger = logging.getLogger(__name__)
ACCOUNT_RETRY = RetryPolicy(max_tries=4, backoff_base=30.0)


async def _fan_out(ctx: JobContext, job_name: str, argument: str, ids: list[int]) -> dict[str, int]:
    enqueued = 0
    for account_id in ids:
        # the run's own id makes the child ids unique per run and stable if this job re-runs
        child_id = f"{job_name}:{account_id}:{ctx.job_id}"
        arguments: dict[str, Any] = {argument: account_id}
        if await ctx.pool.enqueue_job(job_name, _job_id=child_id, **arguments):
            enqueued += 1
    return {"accounts": len(ids), "enqueued": enqueued}


@job(family="sync", timeout=120, retry=RetryPolicy(max_tries=3, backoff_base=10.0))
async def sync_calendar_events(ctx: JobContext) -> dict[str, int]:
    """Enqueue one ``sync_calendar_account`` job per active Google account (hourly)."""
    ids = await active_ids(ctx.sessions, GoogleAccount)
    return await _fan_out(ctx, "sync_calendar_account", "account_id", ids)


@job(family="sync", timeout=120, retry=RetryPolicy(max_tries=3, backoff_base=10.0))
async def sync_notion_pages(ctx: JobContext) -> dict[str, int]:
    """Enqueue one ``sync_notion_integration`` job per active Notion integration (2-hourly)."""
    ids = await active_ids(ctx.sessions, NotionIntegration)
    return await _fan_out(ctx, "sync_notion_integration", "integration_id", ids)


def _sender(ctx: JobContext, limit: str, rate: float, burst: int) -> RetryingSender:
    limiter = SharedRateLimiter(ctx.pool, limit, rate=rate, burst=burst)
    return RetryingSender.for_settings(ctx.http, limiter, ctx.settings)


async def _on_failure(
    ctx: JobContext,
    model: type[GoogleAccount] | type[NotionIntegration],
    account_id: int,
    error: Exception,
) -> dict[str, Any]:
    """Record a failed run on the account; re-raise what the job's policy should see.

    Re-consent is reported as the job's failure (``ReconsentRequired``) without retrying.
    """
    provider = "google" if model is GoogleAccount else "notion"
    message = ctx.redact(str(error))
    if isinstance(error, ReconsentRequired):
        await record_outcome(
            ctx.sessions, model, account_id, state=AccountState.NEEDS_RECONSENT, error=message
        )
        logger.warning("%s %d needs re-consent: %s", model.__tablename__, account_id, message)
        count_account_run(provider, AccountState.NEEDS_RECONSENT.value)
        ctx.report_failure("ReconsentRequired", message)
        return {"status": AccountState.NEEDS_RECONSENT.value, "error": message}
    if isinstance(error, AccountSyncError):
        await record_outcome(
            ctx.sessions, model, account_id, state=AccountState.ERROR, error=message
        )
        count_account_run(provider, AccountState.ERROR.value)
        raise error
    if isinstance(error, TransientJobError) and ctx.is_last_try:
        await record_outcome(ctx.sessions, model, account_id, error=f"gave up: {message}")
    raise error


def _lease(ctx: JobContext, account: str) -> SyncLease:
    return SyncLease(
        ctx.pool, account, f"{ctx.job_id}#{ctx.try_number}", ctx.settings.sync_lease_seconds
    )


def _superseded(kind: str, account_id: int, error: SyncSuperseded) -> dict[str, Any]:
    logger.warning("%s %d: run stopped, %s", kind, account_id, error)
    return {"status": "superseded", "error": str(error)}


@job(family="sync", retry=ACCOUNT_RETRY)
async def sync_calendar_account(ctx: JobContext, account_id: int) -> dict[str, Any]:
    """Sync every calendar of one Google account, one run at a time; its state says how."""
    return await run_exclusively(
        _lease(ctx, f"google:{account_id}"), lambda: _sync_google_account(ctx, account_id)
    )


@job(family="sync", retry=ACCOUNT_RETRY)
async def sync_notion_integration(ctx: JobContext, integration_id: int) -> dict[str, Any]:
    """Sync the pages of one Notion integration, one run at a time; its state says how."""
    return await run_exclusively(
        _lease(ctx, f"notion:{integration_id}"),
        lambda: _sync_notion_integration(ctx, integration_id),
    )


async def _sync_google_account(ctx: JobContext, account_id: int) -> dict[str, Any]:
    cipher = cipher_from_settings(ctx.settings)
    async with ctx.sessions() as session:
        account = await session.get(GoogleAccount, account_id)
    if account is None or account.state is not AccountState.ACTIVE:
        return {"status": "skipped", "state": account.state.value if account else "missing"}
    sender = _sender(
        ctx,
        f"google:user:{account.user_id}",
        ctx.settings.google_rate_per_second,
        ctx.settings.google_rate_burst,
    )

    async def store_tokens(access: str, expires_at: dt.datetime, refresh: str) -> None:
        await record_outcome(
            ctx.sessions,
            GoogleAccount,
            account_id,
            error=account.last_error,
            access_token_encrypted=cipher.encrypt(access),
            token_expires_at=expires_at,
            refresh_token_encrypted=cipher.encrypt(refresh),
        )

    auth = GoogleAuth(
        sender=sender,
        settings=ctx.settings,
        access_token=cipher.decrypt(account.access_token_encrypted)
        if account.access_token_encrypted
        else None,
        expires_at=account.token_expires_at,
        refresh_token=cipher.decrypt(account.refresh_token_encrypted)
        if account.refresh_token_encrypted
        else None,
        on_refresh=store_tokens,
    )
    client = GoogleCalendarClient(sender, auth, ctx.settings.google_api_base_url)
    totals = {
        "calendars": 0,
        "pages": 0,
        "upserted": 0,
        "deleted": 0,
        "full_syncs": 0,
        "calendars_refused": 0,
    }
    try:
        for calendar in await calendars_of(ctx.sessions, account):
            try:
                outcome = await sync_calendar(
                    client, ctx.sessions, calendar, page_size=ctx.settings.google_page_size
                )
            except CalendarSyncError as refused:
                reason = ctx.redact(str(refused))
                await record_calendar_error(ctx.sessions, calendar.id, reason)
                logger.warning("google account %d: %s", account_id, reason)
                totals["calendars_refused"] += 1
                continue
            totals["calendars"] += 1
            totals["pages"] += outcome.pages
            totals["upserted"] += outcome.upserted
            totals["deleted"] += outcome.deleted
            totals["full_syncs"] += int(outcome.full)
            count_restarts("google", "sync_token_expired", int(outcome.resynced_after_410))
    except (AccountSyncError, TransientJobError) as error:
        return await _on_failure(ctx, GoogleAccount, account_id, error)
    except SyncSuperseded as error:
        return _superseded("google account", account_id, error)
    await record_outcome(ctx.sessions, GoogleAccount, account_id, error=None, synced_at=utcnow())
    count_account_run("google", AccountState.ACTIVE.value)
    return {"status": "synced", **totals}


async def _sync_notion_integration(ctx: JobContext, integration_id: int) -> dict[str, Any]:
    cipher = cipher_from_settings(ctx.settings)
    async with ctx.sessions() as session:
        integration = await session.get(NotionIntegration, integration_id)
    if integration is None or integration.state is not AccountState.ACTIVE:
        return {"status": "skipped", "state": integration.state.value if integration else "missing"}
    if not integration.token_encrypted:
        error = ReconsentRequired("no Notion token stored; the user must connect again")
        return await _on_failure(ctx, NotionIntegration, integration_id, error)
    settings = ctx.settings
    sender = _sender(
        ctx, f"notion:{integration_id}", settings.notion_rate_per_second, settings.notion_rate_burst
    )
    client = NotionClient(sender, settings, cipher.decrypt(integration.token_encrypted))
    started = utcnow()
    last_full = integration.full_listing_at
    try:
        outcome = await sync_pages(
            client,
            ctx.sessions,
            integration,
            page_size=settings.notion_page_size,
            overlap=dt.timedelta(seconds=settings.notion_overlap_seconds),
            full_listing=last_full is None
            or started - last_full >= settings.notion_full_listing_interval,
            recheck_limit=settings.notion_recheck_pages,
        )
    except (AccountSyncError, TransientJobError) as error:
        return await _on_failure(ctx, NotionIntegration, integration_id, error)
    except SyncSuperseded as error:
        return _superseded("notion integration", integration_id, error)
    count_restarts("notion", "cursor_refused", outcome.restarts)
    count_account_run("notion", AccountState.ACTIVE.value)
    await record_outcome(
        ctx.sessions,
        NotionIntegration,
        integration_id,
        error=None,
        synced_at=utcnow(),
        watermark=outcome.watermark,
        full_listing_at=started if outcome.full else last_full,
    )
    return {
        "status": "synced",
        "full": outcome.full,
        "requests": outcome.requests,
        "upserted": outcome.upserted,
        "deleted": outcome.deleted,
        "restarts": outcome.restarts,
        "rechecked": outcome.rechecked,
    }
