"""An account's calendars: discovered, removed with their events, encoded, failing loudly.

Calendars come from the account's calendar list and go with their events when the list drops
them; their e-mail-like ids are percent-encoded; one that keeps failing is reported as failing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import CalendarEvent, FailedJob, GoogleAccount, GoogleCalendar
from jobs.settings import Settings
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import connect_google, run_sync, sync_settings

pytestmark = pytest.mark.usefixtures("engine")

HOLIDAYS = "en.usa#holiday@group.v.calendar.google.com"
TEAM = "team+ops@group.calendar.google.com"


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogleCalendar]:
    """A fake Google whose account has its primary calendar, a holiday and a team calendar."""
    async with FakeGoogleCalendar() as fake:
        for calendar, events in (("primary", 3), (HOLIDAYS, 2), (TEAM, 2)):
            for n in range(events):
                fake.put_event(calendar, summary=f"{calendar} {n}")
        yield fake


@pytest.fixture
async def sync(settings: Settings, google: FakeGoogleCalendar) -> Settings:
    """Settings for the sync jobs against the fake; the calendar list comes 2 at a time."""
    async with FakeNotion() as notion:
        return sync_settings(settings, google, notion, google_page_size=2)


async def stored(
    sessions: async_sessionmaker[AsyncSession], account_id: int
) -> tuple[dict[str, GoogleCalendar], dict[str, set[str]]]:
    """The account's calendar rows by id, and its event ids by calendar."""
    async with sessions() as session:
        calendars = {
            c.calendar_id: c
            for c in await session.scalars(
                select(GoogleCalendar).where(GoogleCalendar.account_id == account_id)
            )
        }
        events: dict[str, set[str]] = {}
        for event in await session.scalars(
            select(CalendarEvent).where(CalendarEvent.account_id == account_id)
        ):
            events.setdefault(event.calendar_id, set()).add(event.remote_id)
    return calendars, events


def remote(google: FakeGoogleCalendar) -> dict[str, set[str]]:
    """The fake's live event ids by calendar, for calendars that have events."""
    return {
        calendar: set(google.live_events(calendar))
        for calendar in google.listed_calendars()
        if google.live_events(calendar)
    }


async def test_every_listed_calendar_is_synced_under_its_encoded_id(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """An account with no calendar rows gets every calendar of its list, ids with # and + too."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert (result["status"], result["calendars"], result["calendars_refused"]) == ("synced", 3, 0)
    calendars, events = await stored(sessions, account_id)
    assert set(calendars) == google.listed_calendars() == {google.owner, HOLIDAYS, TEAM}
    assert events == remote(google)
    assert calendars[HOLIDAYS].summary == HOLIDAYS and calendars[HOLIDAYS].sync_token


async def test_a_calendar_removed_upstream_goes_with_its_events(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """A calendar the list reports deleted (incrementally) or no longer lists (410) is removed."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    google.remove_calendar(TEAM)
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["calendars_removed"] == 1
    calendars, events = await stored(sessions, account_id)
    assert set(calendars) == {google.owner, HOLIDAYS} and events == remote(google)

    google.expire_sync_tokens()  # the list's token too: the next listing is a full one
    google.remove_calendar(HOLIDAYS)
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["calendars_removed"] == 1
    calendars, events = await stored(sessions, account_id)
    assert set(calendars) == {google.owner} and events == remote(google)


async def test_a_primary_calendar_row_becomes_the_listed_primary_without_a_resync(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """A row stored as 'primary' takes the primary calendar's real id and keeps its sync token."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    async with sessions.begin() as session:
        account = await session.get(GoogleAccount, account_id)
        assert account is not None
        session.add(
            GoogleCalendar(user_id=account.user_id, account_id=account_id, calendar_id="primary")
        )
    for calendar in (HOLIDAYS, TEAM):
        google.remove_calendar(calendar)
    await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    async with sessions.begin() as session:  # as stored before calendars were discovered
        await session.execute(
            update(GoogleAccount)
            .where(GoogleAccount.id == account_id)
            .values(calendar_list_sync_token=None)
        )
        for model in (GoogleCalendar, CalendarEvent):
            rows = await session.scalars(select(model).where(model.account_id == account_id))
            for row in rows:
                row.calendar_id = "primary"
    google.put_event("primary", summary="new")
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert (result["full_syncs"], result["upserted"]) == (0, 1)
    calendars, events = await stored(sessions, account_id)
    assert set(calendars) == {google.owner} and events == remote(google)


async def test_a_calendar_that_keeps_failing_is_reported_as_failing(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """A calendar refused run after run: the job ends as a failure, counted on the calendar."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    google.refused[TEAM] = (403, "forbidden")
    for _ in range(2):
        result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
        assert (result["status"], result["calendars"], result["calendars_refused"]) == (
            "partial",
            2,
            1,
        )
    calendars, events = await stored(sessions, account_id)
    assert calendars[TEAM].failures == 2
    assert calendars[TEAM].last_error == f"calendar {TEAM!r}: HTTP 403 forbidden: forbidden"
    assert set(events) == {google.owner, HOLIDAYS}
    async with sessions() as session:
        account = await session.get(GoogleAccount, account_id)
        failures = list(await session.scalars(select(FailedJob)))
    assert account is not None and account.last_error is not None and TEAM in account.last_error
    assert [f.error_type for f in failures] == ["CalendarSyncError"] * 2

    del google.refused[TEAM]
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["status"] == "synced"
    calendars, events = await stored(sessions, account_id)
    assert calendars[TEAM].failures == 0 and calendars[TEAM].last_error is None
    assert events == remote(google)
    async with sessions() as session:
        account = await session.get(GoogleAccount, account_id)
    assert account is not None and account.last_error is None
