"""Two syncs of one account requested at once: the local copy still equals the remote one.

The first run is slowed by a 429 with ``Retry-After`` on its first request and every request
takes a little while, so the second run overtakes it and the two would interleave their pages.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from arq.worker import Worker
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.settings import Settings
from jobs.sync.lease import LEASE_PREFIX
from tests.conftest import make_worker, run_burst
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.fakes.server import Fault, RequestLog
from tests.sync_support import (
    SYNC_JOBS,
    connect_google,
    connect_notion,
    local_events,
    local_titles,
    sync_settings,
)

pytestmark = pytest.mark.usefixtures("engine")

EVENTS = 1200
PAGES = 500
#: Seconds the first run waits after its first request (the fake's ``Retry-After``).
FIRST_RUN_DELAY = 0.5


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeGoogleCalendar, FakeNotion]]:
    """Both fakes, each answering every request after 10 ms."""
    async with FakeGoogleCalendar() as google, FakeNotion() as notion:
        google.faults.latency = notion.faults.latency = 0.01
        yield google, notion


@pytest.fixture
def sync(settings: Settings, fakes: tuple[FakeGoogleCalendar, FakeNotion]) -> Settings:
    """Sync settings against the fakes: 25 events or 10 pages per request, no rate limit."""
    google, notion = fakes
    return sync_settings(
        settings,
        google,
        notion,
        google_page_size=25,
        notion_page_size=10,
        google_rate_per_second=1000.0,
        google_rate_burst=1000,
    )


async def overlapping(
    pool: JobsPool,
    settings: Settings,
    log: RequestLog,
    first: tuple[str, dict[str, Any]],
    second: tuple[str, dict[str, Any]],
    *,
    after_requests: int = 1,
    meanwhile: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Run ``first`` on one worker; once the fake saw its first requests, ``second`` on another.

    ``meanwhile`` runs between the two (e.g. to take the first run's lease away).
    """
    seen = len(log.entries) + after_requests - 1
    name, kwargs = first
    await pool.enqueue_job(name, _job_id="first", **kwargs)
    slow: Worker = await make_worker(settings, SYNC_JOBS, family="sync", max_jobs=1)
    slow_run = asyncio.create_task(run_burst(slow))
    for _ in range(500):
        if len(log.entries) > seen:
            break
        await asyncio.sleep(0.01)
    assert len(log.entries) > seen, "the first run never reached the fake"
    if meanwhile is not None:
        await meanwhile()
    name, kwargs = second
    await pool.enqueue_job(name, _job_id="second", **kwargs)
    await run_burst(await make_worker(settings, SYNC_JOBS, family="sync", max_jobs=1))
    await slow_run


async def account_runs(pool: JobsPool) -> list[tuple[str, int]]:
    """Each account sync job's status and how often it ran, sorted."""
    names = ("sync_calendar_account", "sync_notion_integration")
    return sorted(
        (r.result["status"], r.result.get("runs", 0))
        for r in await pool.all_job_results()
        if r.function in names and r.job_id != "setup"
    )


def lost(local: set[str], remote: set[str]) -> str:
    """How the local copy differs from the remote one, for the assertion message."""
    return (
        f"{len(remote - local)} of {len(remote)} remote rows missing locally, "
        f"{len(local - remote)} local rows not remote"
    )


@pytest.mark.parametrize("scenario", ["on-demand during the hourly fan-out", "410 resync"])
async def test_overlapping_calendar_syncs_lose_no_event(
    scenario: str,
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
) -> None:
    """A cron run slowed by a 429 and an on-demand run of one account leave DB == Google.

    The on-demand request is answered "coalesced" and the running sync goes once more. In
    the "410 resync" case the account was synced before and its sync token has expired, so
    both runs are full listings that start with a 410.
    """
    google, _ = fakes
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    for n in range(EVENTS):
        google.put_event("primary", f"event{n:05d}", summary=f"event {n}")
    if scenario == "410 resync":
        await pool.enqueue_job("sync_calendar_account", _job_id="setup", account_id=account_id)
        await run_burst(await make_worker(sync, SYNC_JOBS, family="sync"))
        google.expire_sync_tokens()
        google.faults.add(Fault())  # the 410 goes through; the full listing is slowed
    google.fail(429, "rateLimitExceeded", retry_after=FIRST_RUN_DELAY)
    await overlapping(
        pool,
        sync,
        google.log,
        ("sync_calendar_events", {}),
        ("sync_calendar_account", {"account_id": account_id}),
        after_requests=2 if scenario == "410 resync" else 1,
    )
    local, remote = set(await local_events(sessions, account_id)), set(google.live_events())
    assert local == remote, lost(local, remote)
    assert await account_runs(pool) == [("coalesced", 0), ("synced", 2)]


async def test_overlapping_notion_syncs_lose_no_page(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
) -> None:
    """Two runs of the two-hourly fan-out, the first slowed by a 429, leave DB == Notion.

    The second run's request is answered "coalesced" and the running sync goes once more.
    """
    _, notion = fakes
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    for n in range(PAGES):
        notion.add_page(f"page {n}")
    notion.fail(429, "rate_limited", retry_after=FIRST_RUN_DELAY)
    fan_out = ("sync_notion_pages", {})
    await overlapping(pool, sync, notion.log, fan_out, fan_out)
    local, remote = set(await local_titles(sessions, integration_id)), set(notion.live_titles())
    assert local == remote, lost(local, remote)
    assert await account_runs(pool) == [("coalesced", 0), ("synced", 2)]


async def test_a_run_that_lost_its_lease_is_fenced_out_by_its_generation(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
) -> None:
    """If the lease vanishes (a failover) and a second run starts, the first stops unswept.

    The first run, slowed by a 429, finds a newer generation claimed when it resumes: it stops
    as "superseded" without writing, and the second run's listing decides what exists.
    """
    google, _ = fakes
    account_id, _ = await connect_google(sessions, sync, google, "ann@example.com")
    for n in range(EVENTS):
        google.put_event("primary", f"event{n:05d}", summary=f"event {n}")
    google.fail(429, "rateLimitExceeded", retry_after=FIRST_RUN_DELAY)
    await overlapping(
        pool,
        sync,
        google.log,
        ("sync_calendar_account", {"account_id": account_id}),
        ("sync_calendar_account", {"account_id": account_id}),
        meanwhile=lambda: pool.delete(f"{LEASE_PREFIX}google:{account_id}"),
    )
    local, remote = set(await local_events(sessions, account_id)), set(google.live_events())
    assert local == remote, lost(local, remote)
    assert await account_runs(pool) == [("superseded", 1), ("synced", 1)]
