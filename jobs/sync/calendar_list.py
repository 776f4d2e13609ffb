"""An account's calendars, discovered from its calendar list (``calendarList.list``).

The first listing is full; later ones use the list's own sync token and get removed calendars
as ``deleted`` entries; a 410 drops the token and lists everything again. A calendar deleted
upstream, unsubscribed from or no longer listed is removed locally with its events. A row
stored as ``primary`` (before calendars were discovered) takes the primary calendar's real id,
keeping its events and sync token. If the list itself is refused (403/404: a grant without the
scope), the calendars already stored — or ``primary`` — are synced instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.sync_models import CalendarEvent, GoogleAccount, GoogleCalendar
from jobs.sync.accounts import DEFAULT_CALENDAR, calendars_of
from jobs.sync.errors import AccountSyncError, CalendarSyncError, SyncTokenExpired
from jobs.sync.generation import claim_generation, hold_generation
from jobs.sync.google import GoogleCalendarClient
from jobs.sync.restarts import SYNC_TOKEN_EXPIRED, listing_restarted

__all__ = ["CalendarListResult", "discover_calendars"]


@dataclass
class CalendarListResult:
    """What reading the calendar list did; ``refused`` says why it could not be read."""

    full: bool = False
    listed: int = 0
    removed: int = 0
    refused: str | None = None


async def _read_list(
    client: GoogleCalendarClient,
    account: GoogleAccount,
    page_size: int,
    result: CalendarListResult,
) -> tuple[list[dict[str, Any]], str | None]:
    """Every entry of the list (changes only, with a token) and the list's next sync token."""
    sync_token = account.calendar_list_sync_token
    while True:
        result.full = sync_token is None
        entries: list[dict[str, Any]] = []
        page_token: str | None = None
        try:
            while True:
                page = await client.list_calendars(
                    sync_token=sync_token, page_token=page_token, page_size=page_size
                )
                entries += [
                    e for e in page.get("items") or [] if isinstance(e, dict) and e.get("id")
                ]
                page_token = page.get("nextPageToken")
                if page_token is None:
                    return entries, page.get("nextSyncToken")
        except SyncTokenExpired:
            if sync_token is None:
                raise AccountSyncError("Google answered 410 to a full calendar list") from None
            sync_token = None
            listing_restarted("google", account.id, "calendar list", SYNC_TOKEN_EXPIRED, 1)


async def discover_calendars(
    client: GoogleCalendarClient,
    sessions: async_sessionmaker[AsyncSession],
    account: GoogleAccount,
    *,
    page_size: int,
) -> tuple[list[GoogleCalendar], CalendarListResult]:
    """Bring the account's calendar rows up to date with its calendar list; the rows to sync."""
    result = CalendarListResult()
    async with sessions.begin() as session:
        generation = await claim_generation(session, GoogleAccount, account.id)
    try:
        entries, next_token = await _read_list(client, account, page_size, result)
    except CalendarSyncError as refused:
        result.refused = str(refused)
        return await calendars_of(sessions, account), result
    live = {str(e["id"]): e for e in entries if not e.get("deleted")}
    gone = {str(e["id"]) for e in entries if e.get("deleted")} - set(live)
    result.listed = len(live)
    async with sessions.begin() as session:
        await hold_generation(session, GoogleAccount, account.id, generation)
        stored = {
            c.calendar_id: c
            for c in await session.scalars(
                select(GoogleCalendar).where(GoogleCalendar.account_id == account.id)
            )
        }
        primary = next((i for i, e in live.items() if e.get("primary")), None)
        if primary is not None and DEFAULT_CALENDAR in stored and primary not in stored:
            await _rename(session, account.id, DEFAULT_CALENDAR, primary)
            stored[primary] = stored.pop(DEFAULT_CALENDAR)
            stored[primary].calendar_id = primary
        if result.full:
            gone |= set(stored) - set(live)
        for calendar_id, entry in live.items():
            row = stored.get(calendar_id)
            if row is None:
                row = GoogleCalendar(
                    user_id=account.user_id, account_id=account.id, calendar_id=calendar_id
                )
                session.add(row)
                stored[calendar_id] = row
            row.summary = str(entry.get("summary") or "")
        removed = sorted(gone & set(stored))
        if removed:
            await session.execute(
                delete(CalendarEvent).where(
                    CalendarEvent.account_id == account.id, CalendarEvent.calendar_id.in_(removed)
                )
            )
            await session.execute(
                delete(GoogleCalendar).where(
                    GoogleCalendar.account_id == account.id,
                    GoogleCalendar.calendar_id.in_(removed),
                )
            )
        result.removed = len(removed)
        await session.execute(
            update(GoogleAccount)
            .where(GoogleAccount.id == account.id)
            .values(calendar_list_sync_token=next_token)
        )
        calendars = sorted(
            (c for i, c in stored.items() if i not in gone), key=lambda c: c.calendar_id
        )
    return calendars, result


async def _rename(session: AsyncSession, account_id: int, old: str, new: str) -> None:
    """Move a calendar row and its events from one calendar id to another."""
    for model in (GoogleCalendar, CalendarEvent):
        await session.execute(
            update(model)
            .where(model.account_id == account_id, model.calendar_id == old)
            .values(calendar_id=new)
        )
