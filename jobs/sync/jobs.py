"""The sync family's jobs: hourly/two-hourly fan-out, and one account's sync on demand.

An account's sync runs under its lease (:mod:`jobs.sync.lease`): a request for an account
whose sync is running is answered ``coalesced`` and makes the running one go once more. The
fan-out picks active accounts and those in ``error`` whose next try has come.
"""

from __future__ import annotations

from typing import Any

from jobs.context import JobContext
from jobs.db.sync_models import GoogleAccount, NotionIntegration
from jobs.registry import job
from jobs.retry import RetryPolicy
from jobs.sync.accounts import due_ids
from jobs.sync.google_run import sync_google_account
from jobs.sync.lease import SyncLease, run_exclusively
from jobs.sync.notion_run import sync_notion_account

__all__ = [
    "sync_calendar_account",
    "sync_calendar_events",
    "sync_notion_integration",
    "sync_notion_pages",
]

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
    """Enqueue one ``sync_calendar_account`` job per Google account due (hourly)."""
    ids = await due_ids(ctx.sessions, GoogleAccount)
    return await _fan_out(ctx, "sync_calendar_account", "account_id", ids)


@job(family="sync", timeout=120, retry=RetryPolicy(max_tries=3, backoff_base=10.0))
async def sync_notion_pages(ctx: JobContext) -> dict[str, int]:
    """Enqueue one ``sync_notion_integration`` job per Notion integration due (2-hourly)."""
    ids = await due_ids(ctx.sessions, NotionIntegration)
    return await _fan_out(ctx, "sync_notion_integration", "integration_id", ids)


def _lease(ctx: JobContext, account: str) -> SyncLease:
    return SyncLease(
        ctx.pool, account, f"{ctx.job_id}#{ctx.try_number}", ctx.settings.sync_lease_seconds
    )


@job(family="sync", retry=ACCOUNT_RETRY)
async def sync_calendar_account(ctx: JobContext, account_id: int) -> dict[str, Any]:
    """Sync every calendar of one Google account, one run at a time; its state says how."""
    return await run_exclusively(
        _lease(ctx, f"google:{account_id}"), lambda: sync_google_account(ctx, account_id)
    )


@job(family="sync", retry=ACCOUNT_RETRY)
async def sync_notion_integration(ctx: JobContext, integration_id: int) -> dict[str, Any]:
    """Sync the pages of one Notion integration, one run at a time; its state says how."""
    return await run_exclusively(
        _lease(ctx, f"notion:{integration_id}"),
        lambda: sync_notion_account(ctx, integration_id),
    )
