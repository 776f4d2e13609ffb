"""Reading connected accounts and recording how their runs ended.

An account is synced while ``active``. One in ``error`` (something an operator can fix: a wrong
``GOOGLE_CLIENT_SECRET``, an unexpected answer) is tried again from its ``next_attempt_at`` on,
``SYNC_ERROR_RETRY_BASE_SECONDS`` after the first failure, doubling per failure in a row up to
``SYNC_ERROR_RETRY_MAX_SECONDS``; its first successful run makes it ``active`` again. One that
``needs_reconsent`` is left alone until the user connects it again (or an operator reactivates
it with ``python -m jobs accounts reactivate``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.base import utcnow
from jobs.db.sync_models import AccountState, GoogleAccount, GoogleCalendar, NotionIntegration
from jobs.settings import Settings

__all__ = [
    "DEFAULT_CALENDAR",
    "Account",
    "calendars_of",
    "due_ids",
    "is_due",
    "record_calendar_error",
    "record_error",
    "record_outcome",
    "retry_delay",
]

#: The calendar synced for an account whose calendar list cannot be read and has no rows yet.
DEFAULT_CALENDAR = "primary"

Account = type[GoogleAccount] | type[NotionIntegration]


def is_due(account: GoogleAccount | NotionIntegration, now: dt.datetime) -> bool:
    """Whether the account may be synced now: active, or in error and due for another try."""
    if account.state is AccountState.ACTIVE:
        return True
    return account.state is AccountState.ERROR and (
        account.next_attempt_at is None or account.next_attempt_at <= now
    )


async def due_ids(sessions: async_sessionmaker[AsyncSession], model: Account) -> list[int]:
    """Ids of the accounts of ``model`` to sync now: active ones, and those in error due again."""
    async with sessions() as session:
        rows = await session.scalars(
            select(model.id)
            .where(
                or_(
                    model.state == AccountState.ACTIVE,
                    (model.state == AccountState.ERROR)
                    & or_(model.next_attempt_at.is_(None), model.next_attempt_at <= utcnow()),
                )
            )
            .order_by(model.id)
        )
        return list(rows)


def retry_delay(settings: Settings, failures: int) -> dt.timedelta:
    """How long an account in error waits after its ``failures``-th failure in a row."""
    base = settings.sync_error_retry_base_seconds
    seconds = min(settings.sync_error_retry_max_seconds, base * 2 ** max(0, failures - 1))
    return dt.timedelta(seconds=seconds)


async def calendars_of(
    sessions: async_sessionmaker[AsyncSession], account: GoogleAccount
) -> list[GoogleCalendar]:
    """The account's stored calendars; ``primary`` is added if it has none."""
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
    """Store an account's new state, last error (None clears it) and sync time.

    A sync time means a successful run: the account is active again, with no failures counted.
    """
    changes: dict[str, Any] = {"last_error": error, **values}
    if state is not None:
        changes["state"] = state
    if synced_at is not None:
        changes.update(
            last_synced_at=synced_at, state=AccountState.ACTIVE, failures=0, next_attempt_at=None
        )
    async with sessions.begin() as session:
        await session.execute(update(model).where(model.id == account_id).values(**changes))


async def record_error(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    account: GoogleAccount | NotionIntegration,
    error: str,
) -> dt.datetime:
    """Put the account in ``error`` and schedule its next try; when that is."""
    failures = account.failures + 1
    next_attempt = utcnow() + retry_delay(settings, failures)
    await record_outcome(
        sessions,
        type(account),
        account.id,
        state=AccountState.ERROR,
        error=error,
        failures=failures,
        next_attempt_at=next_attempt,
    )
    return next_attempt


async def record_calendar_error(
    sessions: async_sessionmaker[AsyncSession], calendar_id: int, error: str
) -> int:
    """Note on one calendar why it could not be synced, counting failures in a row; the count."""
    async with sessions.begin() as session:
        failures = await session.scalar(
            update(GoogleCalendar)
            .where(GoogleCalendar.id == calendar_id)
            .values(last_error=error, failures=GoogleCalendar.failures + 1)
            .returning(GoogleCalendar.failures)
        )
    return int(failures or 0)
