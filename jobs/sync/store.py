"""Writing synced events and pages: bulk upserts per page of results, and deletions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.db.base import Base
from jobs.db.sync_models import CalendarEvent, NotionPage
from jobs.db.upsert import upsert_rows
from jobs.sync.notion import page_title

__all__ = [
    "EVENT_KEY",
    "PAGE_KEY",
    "delete_events",
    "delete_pages",
    "event_row",
    "page_row",
    "parse_time",
    "upsert",
]

EVENT_KEY = ("account_id", "calendar_id", "remote_id")
PAGE_KEY = ("integration_id", "remote_id")
#: Rows per statement, well below SQLite's and asyncpg's bound-parameter limits.
ROWS_PER_STATEMENT = 1000


def parse_time(value: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def event_row(
    *,
    user_id: int,
    account_id: int,
    calendar_id: str,
    item: dict[str, Any],
    synced_at: dt.datetime,
    generation: int,
) -> dict[str, Any]:
    """The ``calendar_events`` row of one Google event (all-day dates stay dates)."""
    start, end = item.get("start") or {}, item.get("end") or {}
    all_day = "date" in start
    original = item.get("originalStartTime") or {}
    return {
        "user_id": user_id,
        "account_id": account_id,
        "calendar_id": calendar_id,
        "remote_id": item["id"],
        "status": item.get("status", "confirmed"),
        "summary": item.get("summary", ""),
        "description": item.get("description"),
        "location": item.get("location"),
        "html_link": item.get("htmlLink"),
        "all_day": all_day,
        "starts_at": None if all_day else parse_time(start.get("dateTime")),
        "ends_at": None if all_day else parse_time(end.get("dateTime")),
        "start_date": dt.date.fromisoformat(start["date"]) if all_day else None,
        "end_date": dt.date.fromisoformat(end["date"]) if all_day and "date" in end else None,
        "time_zone": start.get("timeZone"),
        "recurring_event_id": item.get("recurringEventId"),
        "original_start": original.get("dateTime") or original.get("date"),
        "remote_updated_at": parse_time(item.get("updated")),
        "synced_at": synced_at,
        "sync_generation": generation,
    }


def page_row(
    *,
    user_id: int,
    integration_id: int,
    page: dict[str, Any],
    synced_at: dt.datetime,
    generation: int,
) -> dict[str, Any]:
    """The ``notion_pages`` row of one Notion page."""
    return {
        "user_id": user_id,
        "integration_id": integration_id,
        "remote_id": page["id"],
        "title": page_title(page),
        "url": page.get("url"),
        "parent": page.get("parent"),
        "created_time": parse_time(page.get("created_time")),
        "last_edited_time": parse_time(page.get("last_edited_time")),
        "synced_at": synced_at,
        "sync_generation": generation,
    }


async def upsert(
    session: AsyncSession,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
) -> None:
    """Insert or update ``rows`` keyed by ``key``: one statement per page of results."""
    dialect = session.bind.dialect.name
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        await session.execute(upsert_rows(dialect, model, chunk, conflict_columns=key), chunk)


async def delete_events(
    session: AsyncSession,
    *,
    account_id: int,
    calendar_id: str,
    remote_ids: Sequence[str] = (),
    unseen_by: int | None = None,
) -> int:
    """Delete the calendar's events with ``remote_ids``, or those ``unseen_by`` a generation."""
    condition = (CalendarEvent.account_id == account_id) & (
        CalendarEvent.calendar_id == calendar_id
    )
    if unseen_by is not None:
        condition &= CalendarEvent.sync_generation != unseen_by
    elif remote_ids:
        condition &= CalendarEvent.remote_id.in_(list(remote_ids))
    else:
        return 0
    result = await session.execute(delete(CalendarEvent).where(condition))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_pages(
    session: AsyncSession,
    *,
    integration_id: int,
    remote_ids: Sequence[str] = (),
    unseen_by: int | None = None,
) -> int:
    """Delete the integration's pages with ``remote_ids``, or those ``unseen_by`` a generation."""
    condition = NotionPage.integration_id == integration_id
    if unseen_by is not None:
        condition &= NotionPage.sync_generation != unseen_by
    elif remote_ids:
        condition &= NotionPage.remote_id.in_(list(remote_ids))
    else:
        return 0
    result = await session.execute(delete(NotionPage).where(condition))
    return int(result.rowcount)  # type: ignore[attr-defined]
