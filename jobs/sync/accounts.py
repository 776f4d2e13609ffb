"""Reading connected accounts and recording how their runs ended."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.sync_models import AccountState, GoogleAccount, GoogleCalendar, NotionIntegration

__all__ = [
    "DEFAULT_CALENDAR",
    "active_ids",
    "calendars_of",
    "record_calendar_error",
    "record_outcome",
]

#: The calendar synced for an account that has no calendar rows yet.
DEFAULT_CALENDAR = "primary"

Account = type[GoogleAccount] | type[NotionIntegration]


async def active_ids(sessions: async_sessionmaker[AsyncSession], model: Account) -> list[int]:
    """Ids of the accounts of ``model`` that can be synced (state ``active``)."""
    async with sessions() as session:
        rows = await session.scalars(
            select(model.id).where(model.state == AccountState.ACTIVE).order_by(model.id)
        )
        return list(rows)


async def calendars_of(
    sessions: async_sessionmaker[AsyncSession], account: GoogleAccount
) -> list[GoogleCalendar]:
    """The account's calendars; ``primary`` is added the first time."""
    async with sessions.begin() as session:
        calendars = list(
            await session.scalars(
                select(GoogleCalendar)
                .where(GoogleCalendar.account_id == account.id)
                .order_by(GoogleCalendar.id)
            )
        )
        if not calendars:
            calendar = GoogleCalendar(
                user_id=account.user_id, account_id=account.id, calendar_id=DEFAULT_CALENDAR
            )
            session.add(calendar)
            calendars = [calendar]
    return calendars


async def record_outcome(
    sessions: async_sessionmaker[AsyncSession],
    model: Account,
    account_id: int,
    *,
    state: AccountState | None = None,
    error: str | None = None,
    synced_at: dt.datetime | None = None,
    **values: Any,
) -> None:
    """Store an account's new state, last error (None clears it) and sync time."""
    changes: dict[str, Any] = {"last_error": error, **values}
    if state is not None:
        changes["state"] = state
    if synced_at is not None:
        changes["last_synced_at"] = synced_at
    async with sessions.begin() as session:
        await session.execute(update(model).where(model.id == account_id).values(**changes))


async def record_calendar_error(
    sessions: async_sessionmaker[AsyncSession], calendar_id: int, error: str
) -> None:
    """Note on one calendar why it could not be synced; the account's other calendars go on."""
    async with sessions.begin() as session:
        await session.execute(
            update(GoogleCalendar).where(GoogleCalendar.id == calendar_id).values(last_error=error)
        )
