"""One Notion integration's sync: newest edits first, down to the watermark minus an overlap."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.base import utcnow
from jobs.db.sync_models import NotionIntegration, NotionPage
from jobs.sync.errors import AccountSyncError, CursorExpired
from jobs.sync.generation import claim_generation, hold_generation
from jobs.sync.notion import NotionClient
from jobs.sync.store import PAGE_KEY, delete_pages, page_row, parse_time, upsert

__all__ = ["MAX_LISTING_RESTARTS", "PageSyncResult", "sync_pages"]

#: How often one run restarts the listing after a refused cursor before giving up.
MAX_LISTING_RESTARTS = 3


@dataclass
class PageSyncResult:
    """What one integration's sync did; ``watermark`` is the newest edit time seen."""

    full: bool = False
    requests: int = 0
    upserted: int = 0
    deleted: int = 0
    restarts: int = 0
    watermark: dt.datetime | None = None


async def sync_pages(
    client: NotionClient,
    sessions: async_sessionmaker[AsyncSession],
    integration: NotionIntegration,
    *,
    page_size: int,
    overlap: dt.timedelta,
) -> PageSyncResult:
    """Bring the integration's local pages up to date with Notion.

    ``last_edited_time`` is rounded down to the minute, so the walk goes back ``overlap``
    before the watermark and de-duplicates by id; pages in the trash are deleted locally. The
    first run (no watermark) lists everything and deletes local pages it did not see (rows not
    stamped with its generation). A refused cursor restarts the listing from the top.
    SyncSuperseded if a newer run of the integration has started.
    """
    result = PageSyncResult(full=integration.watermark is None, watermark=integration.watermark)
    cutoff = None if integration.watermark is None else integration.watermark - overlap
    async with sessions.begin() as session:
        generation = await claim_generation(session, NotionIntegration, integration.id)
    run_started = utcnow()
    seen: dict[str, dt.datetime | None] = {}
    cursor: str | None = None
    while True:
        try:
            listing = await client.search_pages(start_cursor=cursor, page_size=page_size)
        except CursorExpired:
            result.restarts += 1
            if result.restarts > MAX_LISTING_RESTARTS:
                raise AccountSyncError(
                    f"Notion refused the listing cursor {result.restarts} times in one run"
                ) from None
            cursor = None
            continue
        result.requests += 1
        reached_cutoff = await _write_page(
            sessions,
            integration,
            listing.get("results") or [],
            cutoff,
            seen,
            (run_started, generation),
            result,
        )
        cursor = listing.get("next_cursor")
        if reached_cutoff or not listing.get("has_more") or cursor is None:
            break
    if result.full:
        async with sessions.begin() as session:
            await hold_generation(session, NotionIntegration, integration.id, generation)
            result.deleted += await delete_pages(
                session, integration_id=integration.id, unseen_by=generation
            )
    return result


async def _write_page(
    sessions: async_sessionmaker[AsyncSession],
    integration: NotionIntegration,
    results: list[dict[str, Any]],
    cutoff: dt.datetime | None,
    seen: dict[str, dt.datetime | None],
    stamp: tuple[dt.datetime, int],
    result: PageSyncResult,
) -> bool:
    """Write one page of search results; whether the walk went past the cutoff.

    ``stamp`` is the run's start time and generation, written on every page it saw.
    """
    live: list[dict[str, Any]] = []
    trashed: list[str] = []
    reached_cutoff = False
    for page in results:
        if page.get("object") != "page":
            continue
        edited = parse_time(page.get("last_edited_time"))
        if cutoff is not None and edited is not None and edited < cutoff:
            reached_cutoff = True
            break
        remote_id = str(page["id"])
        if remote_id in seen and (edited is None or (seen[remote_id] or edited) >= edited):
            continue
        seen[remote_id] = edited
        if edited is not None and (result.watermark is None or edited > result.watermark):
            result.watermark = edited
        if page.get("in_trash") or page.get("archived"):
            trashed.append(remote_id)
        else:
            live.append(
                page_row(
                    user_id=integration.user_id,
                    integration_id=integration.id,
                    page=page,
                    synced_at=stamp[0],
                    generation=stamp[1],
                )
            )
    async with sessions.begin() as session:
        await hold_generation(session, NotionIntegration, integration.id, stamp[1])
        if live:
            await upsert(session, NotionPage, live, PAGE_KEY)
        result.deleted += await delete_pages(
            session, integration_id=integration.id, remote_ids=trashed
        )
    result.upserted += len(live)
    return reached_cutoff
