"""Re-checking the local Notion pages an incremental run did not see, one request each.

Notion's search never shows a page leaving (trashed, deleted, unshared), so each incremental
run asks ``GET /v1/pages/{id}`` about a few local pages it did not list — those confirmed
longest ago (``synced_at``), so that successive runs go round all of them. A page in the trash,
deleted for good or no longer shared is deleted locally; one still there is written again,
stamped as confirmed now. The requests go through the integration's shared rate limit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.base import utcnow
from jobs.db.sync_models import NotionIntegration, NotionPage
from jobs.sync.generation import hold_generation
from jobs.sync.notion import NotionClient
from jobs.sync.store import PAGE_KEY, delete_pages, page_row, upsert

__all__ = ["recheck_unseen"]


async def recheck_unseen(
    client: NotionClient,
    sessions: async_sessionmaker[AsyncSession],
    integration: NotionIntegration,
    generation: int,
    *,
    limit: int,
) -> tuple[int, int]:
    """Re-check up to ``limit`` pages generation ``generation`` did not see; (checked, deleted)."""
    if limit <= 0:
        return 0, 0
    async with sessions() as session:
        remote_ids = list(
            await session.scalars(
                select(NotionPage.remote_id)
                .where(
                    NotionPage.integration_id == integration.id,
                    NotionPage.sync_generation != generation,
                )
                .order_by(NotionPage.synced_at, NotionPage.id)
                .limit(limit)
            )
        )
    deleted = 0
    for remote_id in remote_ids:
        page = await client.get_page(remote_id)
        async with sessions.begin() as session:
            await hold_generation(session, NotionIntegration, integration.id, generation)
            if page is None or page.get("in_trash") or page.get("archived"):
                deleted += await delete_pages(
                    session, integration_id=integration.id, remote_ids=[remote_id]
                )
            else:
                row = page_row(
                    user_id=integration.user_id,
                    integration_id=integration.id,
                    page={**page, "id": remote_id},
                    synced_at=utcnow(),
                    generation=generation,
                )
                await upsert(session, NotionPage, [row], PAGE_KEY)
    return len(remote_ids), deleted
