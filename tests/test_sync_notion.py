"""The Notion sync against the fake Notion, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import AccountState, NotionIntegration
from jobs.settings import Settings
from tests.conftest import make_worker, run_burst
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import SYNC_JOBS, connect_notion, local_titles, run_sync, sync_settings

pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
async def notion() -> AsyncIterator[FakeNotion]:
    """A running fake Notion."""
    async with FakeNotion() as fake:
        yield fake


@pytest.fixture
async def sync(settings: Settings, notion: FakeNotion) -> Settings:
    """Settings for the sync jobs against the fake, with pages of 2 results."""
    async with FakeGoogleCalendar() as google:
        return sync_settings(settings, google, notion, notion_page_size=2)


async def integration(
    sessions: async_sessionmaker[AsyncSession], integration_id: int
) -> NotionIntegration:
    """The integration row as stored now."""
    async with sessions() as session:
        row = await session.get(NotionIntegration, integration_id)
        assert row is not None
        return row


async def test_first_sync_edit_same_minute_and_trash_mirror_the_fake(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """Pages, an edit within the watermark's minute, and a trashed page leave DB == fake."""
    notion.clock = lambda: dt.datetime(2026, 5, 1, 9, 30, 5, tzinfo=dt.UTC)
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    ids = [notion.add_page(f"page {n}") for n in range(4)]
    notion.add_page("a task", title_property="Task name")
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    assert result["full"] and result["upserted"] == 5
    assert await local_titles(sessions, integration_id) == notion.live_titles()
    assert (await integration(sessions, integration_id)).watermark == dt.datetime(
        2026, 5, 1, 9, 30, tzinfo=dt.UTC
    )

    notion.clock = lambda: dt.datetime(2026, 5, 1, 9, 30, 50, tzinfo=dt.UTC)  # same minute
    notion.set_title(ids[0], "renamed")
    notion.trash(ids[1])
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    assert not result["full"] and result["deleted"] == 1
    assert await local_titles(sessions, integration_id) == notion.live_titles()


async def test_old_pages_are_not_listed_again(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """An incremental run stops at the watermark minus the overlap: 2 requests, not 4."""
    notion.clock = lambda: dt.datetime(2026, 5, 1, 6, 0, tzinfo=dt.UTC)
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    for n in range(5):
        notion.add_page(f"old {n}")
    notion.clock = lambda: dt.datetime(2026, 5, 1, 7, 0, tzinfo=dt.UTC)  # the watermark
    notion.add_page("newest old one")
    await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    notion.clock = lambda: dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)
    notion.add_page("new")
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    # [new, newest old one] then [old …] which is before the watermark minus the overlap
    assert (result["requests"], result["upserted"]) == (2, 2)
    assert await local_titles(sessions, integration_id) == notion.live_titles()


async def test_expired_cursor_restarts_the_listing(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """A 400 validation_error for a cursor restarts the listing; the run completes."""
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    for n in range(5):
        notion.add_page(f"page {n}")
    notion.expire_cursors_after = 1
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    assert result["restarts"] == 1
    assert await local_titles(sessions, integration_id) == notion.live_titles()


async def test_429_retry_after_and_a_502_html_body_are_retried(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """rate_limited with Retry-After: 0.4 is waited out; a 502 with HTML is retried too."""
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    notion.add_page("x")
    notion.fail(429, "rate_limited", retry_after=0.4)
    notion.bad_gateway()
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    assert result["status"] == "synced"
    first, second, _third = notion.log.times()
    assert second - first >= 0.4


async def test_unauthorized_token_is_recorded_on_the_integration(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """A revoked Notion token (401 unauthorized) sets state=error with the reason; no retry."""
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    notion.tokens.clear()
    job = await pool.enqueue_job("sync_notion_integration", integration_id=integration_id)
    assert job is not None
    await run_burst(await make_worker(sync, SYNC_JOBS, family="sync"))
    stored = await integration(sessions, integration_id)
    assert stored.state is AccountState.ERROR
    assert stored.last_error == "Notion search: HTTP 401 unauthorized: API token is invalid."
    assert len(notion.log.entries) == 1


async def test_missing_encryption_key_refuses_to_sync(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """Without TOKEN_ENCRYPTION_KEY the job fails at once with an error naming the setting."""
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    job = await pool.enqueue_job("sync_notion_integration", integration_id=integration_id)
    assert job is not None
    unkeyed = sync.model_copy(update={"token_encryption_key": None})
    await run_burst(await make_worker(unkeyed, SYNC_JOBS, family="sync"))
    with pytest.raises(Exception, match="TOKEN_ENCRYPTION_KEY is not set"):
        await job.result(timeout=1)
    assert notion.log.entries == []
