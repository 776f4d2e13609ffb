"""The sync lease in Redis: one holder, coalesced requests, renewal and take-over."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.settings import Settings
from jobs.sync.lease import SyncLease
from tests.conftest import make_worker, run_burst
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import SYNC_JOBS, connect_notion, local_titles, run_sync, sync_settings


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test Redis database."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def lease(redis: Redis, holder: str, seconds: float = 30.0) -> SyncLease:
    """The lease of account ``notion:1`` as seen by ``holder``."""
    return SyncLease(redis, "notion:1", holder, seconds)


async def test_a_request_while_held_is_coalesced_into_one_more_run(redis: Redis) -> None:
    """A second holder is refused and flags a rerun; the first keeps the lease once for it."""
    first, second = lease(redis, "a"), lease(redis, "b")
    assert await first.acquire()
    assert not await second.acquire()
    assert not await second.acquire()  # two requests while held still mean one more run
    assert await first.finish()  # rerun asked for: lease kept
    assert await first.current_holder() == "a"
    assert not await first.finish()  # nothing asked since: released
    assert await first.current_holder() is None
    assert await second.acquire()


async def test_a_new_holder_covers_requests_made_before_it(redis: Redis) -> None:
    """A run failing with the flag set leaves it; the next holder clears it on taking the lease."""
    first, second, third = lease(redis, "a"), lease(redis, "b"), lease(redis, "c")
    assert await first.acquire()
    assert not await second.acquire()
    await first.release()
    assert await third.acquire()
    assert not await third.finish()
    assert await redis.exists(third.key, third.rerun_key) == 0


async def test_renewal_keeps_the_lease_and_another_holder_cannot_renew_it(redis: Redis) -> None:
    """Renewed leases outlive their length; a holder whose lease was taken cannot renew it."""
    first, second = lease(redis, "a", seconds=1.0), lease(redis, "b", seconds=1.0)
    assert await first.acquire()
    renewing = asyncio.create_task(first.keep_renewed())
    await asyncio.sleep(2.0)
    assert await first.current_holder() == "a"
    renewing.cancel()
    await asyncio.gather(renewing, return_exceptions=True)
    await redis.set(first.key, "b", px=1000)  # taken over meanwhile
    assert not await first.renew()
    assert await second.renew()
    await first.release()
    assert await first.current_holder() == "b"


@pytest.mark.usefixtures("engine")
async def test_an_abandoned_lease_is_taken_over_after_its_length(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    """A lease whose holder died answers requests "coalesced" until it expires, then one runs."""
    async with FakeGoogleCalendar() as google, FakeNotion() as notion:
        sync = sync_settings(settings, google, notion, sync_lease_seconds=1.0)
        integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
        notion.add_page("kept")
        dead = SyncLease(redis, f"notion:{integration_id}", "dead-worker#1", 1.0)
        assert await dead.acquire()
        result = await run_sync(
            pool, sync, "sync_notion_integration", integration_id=integration_id
        )
        assert result == {"status": "coalesced", "running": "dead-worker#1"}
        await asyncio.sleep(1.2)
        result = await run_sync(
            pool, sync, "sync_notion_integration", integration_id=integration_id
        )
        assert (result["status"], result["runs"]) == ("synced", 1)
        assert await local_titles(sessions, integration_id) == notion.live_titles()


@pytest.mark.usefixtures("engine")
async def test_a_long_run_keeps_its_lease_and_gives_it_up_at_the_end(
    pool: JobsPool, settings: Settings, sessions: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    """A run lasting three lease lengths still holds the lease near its end; then it is free."""
    async with FakeGoogleCalendar() as google, FakeNotion() as notion:
        sync = sync_settings(settings, google, notion, sync_lease_seconds=1.0, notion_page_size=1)
        integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
        for n in range(12):
            notion.add_page(f"page {n}")
        notion.faults.latency = 0.25  # 12 requests: about 3 s
        key = SyncLease(redis, f"notion:{integration_id}", "", 1.0).key
        await pool.enqueue_job(
            "sync_notion_integration", _job_id="long", integration_id=integration_id
        )
        running = asyncio.create_task(run_burst(await make_worker(sync, SYNC_JOBS, family="sync")))
        for _ in range(200):
            if len(notion.log.entries) >= 10:
                break
            await asyncio.sleep(0.05)
        assert await redis.get(key) == b"long#1"
        await running
        assert await redis.exists(key) == 0
        assert await local_titles(sessions, integration_id) == notion.live_titles()
