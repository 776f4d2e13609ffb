"""One Notion integration's sync: newest edits first, down to the watermark minus an overlap.

Notion's search leaves out pages in the trash and pages no longer shared with the integration,
so a walk over recent edits never sees a page disappear. Removals are noticed two ways: a full
listing (the first run, then every ``NOTION_FULL_LISTING_INTERVAL``) deletes every local page it
did not see, and each incremental run re-checks up to ``NOTION_RECHECK_PAGES`` local pages it did
not see — those confirmed longest ago — with ``GET /v1/pages/{id}`` (:mod:`jobs.sync.recheck`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.base import utcnow
from jobs.db.sync_models import NotionIntegration, NotionPage
from jobs.sync.errors import AccountSyncError, CursorExpired
from jobs.sync.generation import claim_generation, hold_generation
from jobs.sync.notion import NotionClient
from jobs.sync.recheck import recheck_unseen
from jobs.sync.restarts import CURSOR_REFUSED, listing_restarted
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
    rechecked: int = 0
    watermark: dt.datetime | None = None


@dataclass
class _Listing:
    """The walks of one run: the pages seen so far, stamped with the run's generation."""

    client: NotionClient
    sessions: async_sessionmaker[AsyncSession]
    integration: NotionIntegration
    generation: int
    started: dt.datetime
    page_size: int
    result: PageSyncResult
    seen: dict[str, dt.datetime | None] = field(default_factory=dict)
    #: The newest edit time the run's first request listed: the top when it started.
    top: dt.datetime | None = None

    async def walk(self, cutoff: dt.datetime | None) -> None:
        """List newest edits first down to ``cutoff`` (everything if None), writing each page."""
        cursor: str | None = None
        while True:
            try:
                listing = await self.client.search_pages(
                    start_cursor=cursor, page_size=self.page_size
                )
            except CursorExpired:
                self.result.restarts += 1
                if self.result.restarts > MAX_LISTING_RESTARTS:
                    raise AccountSyncError(
                        f"Notion refused the listing cursor {self.result.restarts} times in one run"
                    ) from None
                listing_restarted(
                    "notion", self.integration.id, "pages", CURSOR_REFUSED, self.result.restarts
                )
                cursor = None
                continue
            self.result.requests += 1
            reached_cutoff = await self._write(listing.get("results") or [], cutoff)
            cursor = listing.get("next_cursor")
            if reached_cutoff or not listing.get("has_more") or cursor is None:
                return

    async def _write(self, results: list[dict[str, Any]], cutoff: dt.datetime | None) -> bool:
        """Write one page of search results; whether the walk went past the cutoff."""
        live: list[dict[str, Any]] = []
        trashed: list[str] = []
        reached_cutoff = False
        for page in results:
            if page.get("object") != "page":
                continue
            edited = parse_time(page.get("last_edited_time"))
            if self.top is None:
                self.top = edited
            if cutoff is not None and edited is not None and edited < cutoff:
                reached_cutoff = True
                break
            remote_id = str(page["id"])
            if remote_id in self.seen and (
                edited is None or (self.seen[remote_id] or edited) >= edited
            ):
                continue
            self.seen[remote_id] = edited
            if edited is not None and (
                self.result.watermark is None or edited > self.result.watermark
            ):
                self.result.watermark = edited
            if page.get("in_trash") or page.get("archived"):
                trashed.append(remote_id)
            else:
                live.append(
                    page_row(
                        user_id=self.integration.user_id,
                        integration_id=self.integration.id,
                        page=page,
                        synced_at=self.started,
                        generation=self.generation,
                    )
                )
        async with self.sessions.begin() as session:
            await hold_generation(session, NotionIntegration, self.integration.id, self.generation)
            if live:
                await upsert(session, NotionPage, live, PAGE_KEY)
            self.result.deleted += await delete_pages(
                session, integration_id=self.integration.id, remote_ids=trashed
            )
        self.result.upserted += len(live)
        return reached_cutoff


async def sync_pages(
    client: NotionClient,
    sessions: async_sessionmaker[AsyncSession],
    integration: NotionIntegration,
    *,
    page_size: int,
    overlap: dt.timedelta,
    full_listing: bool,
    recheck_limit: int,
) -> PageSyncResult:
    """Bring the integration's local pages up to date with Notion.

    ``last_edited_time`` is rounded down to the minute, so the walk goes back ``overlap``
    before the watermark and de-duplicates by id. A full listing (``full_listing``, or no
    watermark yet) lists everything, then the top again for pages edited while it ran (they
    moved ahead of its cursor), and deletes the local pages it did not see. An incremental run
    re-checks up to ``recheck_limit`` pages it did not see. A refused cursor restarts the
    listing from the top. SyncSuperseded if a newer run of the integration has started.
    """
    full = full_listing or integration.watermark is None
    result = PageSyncResult(full=full, watermark=integration.watermark)
    async with sessions.begin() as session:
        generation = await claim_generation(session, NotionIntegration, integration.id)
    listing = _Listing(
        client, sessions, integration, generation, utcnow(), page_size, result=result
    )
    if full:
        await listing.walk(None)
        if listing.top is not None:  # Notion's clock, not ours
            await listing.walk(listing.top - overlap)
        async with sessions.begin() as session:
            await hold_generation(session, NotionIntegration, integration.id, generation)
            result.deleted += await delete_pages(
                session, integration_id=integration.id, unseen_by=generation
            )
        return result
    assert integration.watermark is not None
    await listing.walk(integration.watermark - overlap)
    checked, deleted = await recheck_unseen(
        client, sessions, integration, generation, limit=recheck_limit
    )
    result.rechecked, result.deleted = checked, result.deleted + deleted
    return result
