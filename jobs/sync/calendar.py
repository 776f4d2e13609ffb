"""One calendar's sync: full the first time, incremental with the sync token after."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.base import utcnow
from jobs.db.sync_models import CalendarEvent, GoogleCalendar
from jobs.sync.errors import SyncTokenExpired
from jobs.sync.generation import claim_generation, hold_generation
from jobs.sync.google import GoogleCalendarClient
from jobs.sync.restarts import SYNC_TOKEN_EXPIRED, listing_restarted
from jobs.sync.store import EVENT_KEY, delete_events, event_row, upsert

__all__ = ["CalendarSyncResult", "sync_calendar"]


@dataclass
class CalendarSyncResult:
    """What one calendar's sync did."""

    full: bool = False
    pages: int = 0
    upserted: int = 0
    deleted: int = 0
    resynced_after_410: bool = False


async def sync_calendar(
    client: GoogleCalendarClient,
    sessions: async_sessionmaker[AsyncSession],
    calendar: GoogleCalendar,
    *,
    page_size: int,
) -> CalendarSyncResult:
    """Bring the local events of ``calendar`` up to date with Google.

    Every page is followed (a page may be empty and still have a next one); each page is
    written with one upsert and one delete; the new sync token is stored only after the last
    page. A 410 drops the token and lists everything again, deleting what that listing (its
    generation) did not see. SyncSuperseded if a newer run of the calendar has started.
    """
    result = CalendarSyncResult()
    sync_token = calendar.sync_token
    while True:
        try:
            await _walk(client, sessions, calendar, sync_token, page_size, result)
            return result
        except SyncTokenExpired:
            if sync_token is None:
                raise
            sync_token = None
            result.resynced_after_410 = True
            listing_restarted(
                "google", calendar.account_id, "calendar events", SYNC_TOKEN_EXPIRED, 1
            )


async def _walk(
    client: GoogleCalendarClient,
    sessions: async_sessionmaker[AsyncSession],
    calendar: GoogleCalendar,
    sync_token: str | None,
    page_size: int,
    result: CalendarSyncResult,
) -> None:
    async with sessions.begin() as session:
        generation = await claim_generation(session, GoogleCalendar, calendar.id)
    run_started = utcnow()
    result.full = sync_token is None
    page_token: str | None = None
    while True:
        page = await client.list_events(
            calendar.calendar_id, sync_token=sync_token, page_token=page_token, page_size=page_size
        )
        result.pages += 1
        live, cancelled = [], []
        for item in page.get("items") or []:
            if item.get("status") == "cancelled":
                cancelled.append(str(item["id"]))
            else:
                live.append(
                    event_row(
                        user_id=calendar.user_id,
                        account_id=calendar.account_id,
                        calendar_id=calendar.calendar_id,
                        item=item,
                        synced_at=run_started,
                        generation=generation,
                    )
                )
        page_token = page.get("nextPageToken")
        next_sync_token = page.get("nextSyncToken")
        async with sessions.begin() as session:
            await hold_generation(session, GoogleCalendar, calendar.id, generation)
            if live:
                await upsert(session, CalendarEvent, live, EVENT_KEY)
            result.deleted += await delete_events(
                session,
                account_id=calendar.account_id,
                calendar_id=calendar.calendar_id,
                remote_ids=cancelled,
            )
            result.upserted += len(live)
            if page_token is None:
                if result.full:
                    # a full listing has no tombstones: what it did not see is gone
                    result.deleted += await delete_events(
                        session,
                        account_id=calendar.account_id,
                        calendar_id=calendar.calendar_id,
                        unseen_by=generation,
                    )
                await session.execute(
                    update(GoogleCalendar)
                    .where(GoogleCalendar.id == calendar.id)
                    .values(
                        sync_token=next_sync_token,
                        last_synced_at=utcnow(),
                        last_error=None,
                        failures=0,
                    )
                )
                calendar.sync_token = next_sync_token
                return
