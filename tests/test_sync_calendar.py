"""The calendar sync against the fake Google Calendar, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import AccountState, CalendarEvent, GoogleAccount, GoogleCalendar
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import (
    SYNC_JOBS,
    connect_google,
    local_events,
    run_sync,
    sync_settings,
)

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogleCalendar]:
    """A running fake Google Calendar whose only calendar, the primary one, is empty."""
    async with FakeGoogleCalendar() as fake:
        yield fake


@pytest.fixture
async def sync(settings: Settings, google: FakeGoogleCalendar) -> Settings:
    """Settings for the sync jobs against the fake, with pages of 3 events."""
    async with FakeNotion() as notion:
        return sync_settings(settings, google, notion, google_page_size=3)


def assert_same(local: dict[str, CalendarEvent], remote: dict[str, dict[str, object]]) -> None:
    """The stored events are exactly the fake's live events, with their summaries."""
    assert set(local) == set(remote)
    for remote_id, event in remote.items():
        assert local[remote_id].summary == event.get("summary", "")


async def account(sessions: async_sessionmaker[AsyncSession], account_id: int) -> GoogleAccount:
    """The account row as stored now."""
    async with sessions() as session:
        row = await session.get(GoogleAccount, account_id)
        assert row is not None
        return row


async def test_first_sync_change_delete_and_410_resync_mirror_the_fake(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """Full sync, then incremental changes and deletions, then a 410 resync leave DB == fake."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    ids = [google.put_event("primary", summary=f"event {n}") for n in range(7)]
    google.put_recurring("primary", "standup", dt.datetime(2026, 5, 4, 9, tzinfo=dt.UTC), 3)
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["full_syncs"] == 1 and result["pages"] == 4  # 10 events, 3 per page
    assert_same(await local_events(sessions, account_id), google.live_events())

    google.update_event("primary", ids[0], summary="renamed")
    google.delete_event("primary", ids[1])
    [first, *_] = sorted(i for i in google.live_events() if i.startswith("standup_"))
    google.delete_event("primary", first)  # one cancelled instance of the series
    google.put_event("primary", summary="new one")
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["full_syncs"] == 0 and result["deleted"] == 2
    stored = await local_events(sessions, account_id)
    assert_same(stored, google.live_events())
    assert stored[ids[0]].summary == "renamed"
    assert all(e.recurring_event_id == "standup" for i, e in stored.items() if "standup_" in i)

    google.delete_event("primary", ids[2])  # deleted "in the gap": no tombstone on a full sync
    google.expire_sync_tokens()
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["full_syncs"] == 1
    assert_same(await local_events(sessions, account_id), google.live_events())


async def test_empty_pages_with_a_next_token_are_followed_and_token_stored_at_the_end(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """Three empty pages before the data are followed; the sync token comes from the last page."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    for n in range(4):
        google.put_event("primary", summary=f"e{n}")
    google.empty_pages = 3
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["pages"] == 5
    assert_same(await local_events(sessions, account_id), google.live_events())
    async with sessions() as session:
        [calendar] = await session.scalars(select(GoogleCalendar))
    assert calendar.sync_token is not None and calendar.sync_token.startswith("sync-")


async def test_expired_access_token_is_refreshed_and_stored_encrypted(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """A 401 on an access token the DB thinks valid triggers one refresh; the new one is stored."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    google.put_event("primary", summary="x")
    before = (await account(sessions, account_id)).access_token_encrypted
    google.expire_access_tokens()
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["status"] == "synced" and google.refreshes == 1
    after = await account(sessions, account_id)
    assert after.access_token_encrypted != before
    assert after.access_token_encrypted is not None
    assert "ya29." not in after.access_token_encrypted  # ciphertext, not the token


async def test_revoked_grant_marks_account_needs_reconsent_and_stops(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """invalid_grant sets needs_reconsent; the next cron run no longer syncs that account."""
    account_id, refresh = await connect_google(sessions, sync, google, "ann@example.com")
    google.revoke(refresh)
    google.expire_access_tokens()
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["status"] == "needs_reconsent"
    stored = await account(sessions, account_id)
    assert stored.state is AccountState.NEEDS_RECONSENT
    assert stored.last_error is not None and "invalid_grant" in stored.last_error
    fan_out = await run_sync(pool, sync, "sync_calendar_events")
    assert fan_out == {"accounts": 0, "enqueued": 0}


async def test_one_broken_account_does_not_stop_the_others(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """The hourly fan-out syncs two good accounts while the third's revoked grant is recorded."""
    good = [(await connect_google(sessions, sync, google, f"u{n}@example.com"))[0] for n in (1, 2)]
    broken, refresh = await connect_google(
        sessions, sync, google, "broken@example.com", access_lifetime=0
    )
    google.revoke(refresh)
    google.put_event("primary", summary="shared")
    fan_out = await run_sync(pool, sync, "sync_calendar_events")
    assert fan_out == {"accounts": 3, "enqueued": 3}
    for account_id in good:
        assert_same(await local_events(sessions, account_id), google.live_events())
        assert (await account(sessions, account_id)).last_synced_at is not None
    stored = await account(sessions, broken)
    assert stored.state is AccountState.NEEDS_RECONSENT
    assert await local_events(sessions, broken) == {}


async def test_429_retry_after_is_honoured(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """After a 429 with Retry-After: 0.4 and a 403 rateLimitExceeded the sync still completes."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    google.put_event("primary", summary="x")
    google.fail(429, "rateLimitExceeded", retry_after=0.4)
    google.fail(403, "userRateLimitExceeded")
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert result["status"] == "synced"
    first, second, *_ = google.log.times()  # the calendar list's first request, then its retry
    assert second - first >= 0.4
    assert_same(await local_events(sessions, account_id), google.live_events())


async def test_timeouts_and_5xx_are_retried(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """A stalled request (client timeout 0.3 s) and a 503 are retried within the try."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    google.put_event("primary", summary="x")
    google.stall(0.6)
    google.fail(503)
    quick = sync.model_copy(update={"http_timeout": 0.3})
    result = await run_sync(pool, quick, "sync_calendar_account", account_id=account_id)
    # the calendar list: stalled, 503, answered; then the events
    assert result["status"] == "synced" and len(google.log.times()) == 4


async def test_all_day_events_stay_on_their_date_in_any_zone(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """An all-day event is stored as its dates (end exclusive), a timed one as its UTC instant.

    The workers run in UTC+14 and the event's own zone is UTC-8: a date turned into a UTC
    midnight would land on another day in one of them.
    """
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    all_day = google.put_event(
        "primary",
        summary="holiday",
        start={"date": "2026-03-08", "timeZone": "America/Los_Angeles"},
        end={"date": "2026-03-09", "timeZone": "America/Los_Angeles"},
    )
    timed = google.put_event(
        "primary",
        start={"dateTime": "2026-03-08T23:30:00-08:00"},
        end={"dateTime": "2026-03-09T00:30:00-08:00"},
    )
    settings = sync.model_copy(update={"schedule_timezone": "Pacific/Kiritimati"})
    await run_sync(pool, settings, "sync_calendar_account", account_id=account_id)
    stored = await local_events(sessions, account_id)
    event = stored[all_day]
    assert event.all_day and event.starts_at is None
    assert (event.start_date, event.end_date) == (dt.date(2026, 3, 8), dt.date(2026, 3, 9))
    assert stored[timed].starts_at == dt.datetime(2026, 3, 9, 7, 30, tzinfo=dt.UTC)
    assert stored[timed].start_date is None and not stored[timed].all_day


async def test_http_and_sql_spans_of_a_sync_nest_under_its_job_span(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
    spans: InMemorySpanExporter,
) -> None:
    """Each request to Google and each upsert is a child span of the sync job's CONSUMER span."""
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    google.put_event("primary", summary="traced")
    await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    [consumer] = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.CONSUMER
        and s.attributes["messaging.arq.job.name"] == "sync_calendar_account"
    ]
    children = [
        s
        for s in spans.get_finished_spans()
        if s.parent is not None and s.parent.span_id == consumer.context.span_id
    ]
    http = [s for s in children if s.name.startswith("GET")]
    sql = [s for s in children if "calendar_events" in str(s.attributes.get("db.statement", ""))]
    assert http and all(s.kind is SpanKind.CLIENT for s in http)
    events_path = "/calendar/v3/calendars/owner%40example.com/events"
    assert any(events_path in str(s.attributes) for s in http)
    assert sql and all(s.context.trace_id == consumer.context.trace_id for s in http + sql)


async def test_two_workers_never_exceed_a_users_shared_rate(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """Two accounts of one user synced by two workers at once stay within burst + rate x t."""
    rate, burst = 25.0, 2
    limited = sync.model_copy(
        update={"google_rate_per_second": rate, "google_rate_burst": burst, "google_page_size": 1}
    )
    first, _ = await connect_google(sessions, limited, google, "ann@example.com")
    second, _ = await connect_google(sessions, limited, google, "ann@work.example", user_of=first)
    for n in range(18):
        google.put_event("primary", summary=f"event {n}")
    for account_id in (first, second):
        await pool.enqueue_job("sync_calendar_account", account_id=account_id)
    workers = [await make_worker(limited, SYNC_JOBS, family="sync", max_jobs=1) for _ in range(2)]
    await asyncio.gather(*(run_burst(w) for w in workers))
    assert [w.jobs_complete for w in workers] == [1, 1]
    times = google.log.times("/events")
    assert len(times) == 36
    for i, start in enumerate(times):
        for j in range(i + 1, len(times)):
            # 1 request of slack for the network between Redis' clock and the fake's
            assert j - i + 1 <= burst + rate * (times[j] - start) + 1
    for account_id in (first, second):
        assert_same(await local_events(sessions, account_id), google.live_events())
