"""One run of one Notion integration's sync: its token, its listing, its outcome."""

from __future__ import annotations

import datetime as dt
from typing import Any

from jobs.context import JobContext
from jobs.db.base import utcnow
from jobs.db.sync_models import AccountState, NotionIntegration
from jobs.errors import TransientJobError
from jobs.sync.accounts import is_due, record_outcome
from jobs.sync.errors import AccountSyncError, ReconsentRequired
from jobs.sync.generation import SyncSuperseded
from jobs.sync.notion import NotionClient
from jobs.sync.observability import count_account_run, count_restarts
from jobs.sync.outcome import run_failed, sender, skipped, superseded
from jobs.sync.pages import sync_pages
from jobs.sync.tokens import cipher_from_settings

__all__ = ["sync_notion_account"]


async def sync_notion_account(ctx: JobContext, integration_id: int) -> dict[str, Any]:
    """Sync the pages of one Notion integration; its state records how the run ended."""
    cipher = cipher_from_settings(ctx.settings)
    async with ctx.sessions() as session:
        integration = await session.get(NotionIntegration, integration_id)
    started = utcnow()
    if integration is None or not is_due(integration, started):
        return skipped(integration)
    if not integration.token_encrypted:
        error = ReconsentRequired("no Notion token stored; the user must connect again")
        return await run_failed(ctx, integration, error)
    settings = ctx.settings
    client = NotionClient(
        sender(
            ctx,
            f"notion:{integration_id}",
            settings.notion_rate_per_second,
            settings.notion_rate_burst,
        ),
        settings,
        cipher.decrypt(integration.token_encrypted),
    )
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
        return await run_failed(ctx, integration, error)
    except SyncSuperseded as error:
        return superseded(integration, error)
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
