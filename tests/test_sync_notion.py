"""The Notion sync against the fake Notion, on SQLite and PostgreSQL, removals included."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.db import NotionIntegration
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
    first, second, *_ = notion.log.times()
    assert second - first >= 0.4


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


def at(hour: int) -> dt.datetime:
    """A fixed time of 1 May 2026, UTC."""
    return dt.datetime(2026, 5, 1, hour, tzinfo=dt.UTC)


async def synced_integration(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    notion: FakeNotion,
    old_pages: int,
) -> tuple[int, list[str]]:
    """An integration fully synced with ``old_pages`` pages edited at 06:00 and one at 09:00.

    Its watermark is 09:00, so incremental runs no longer list the old pages.
    """
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    notion.clock = lambda: at(6)
    old = [notion.add_page(f"old {n}") for n in range(old_pages)]
    notion.clock = lambda: at(9)
    notion.add_page("recent")
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    assert result["full"] and result["upserted"] == old_pages + 1
    return integration_id, old


async def last_full_listing(
    sessions: async_sessionmaker[AsyncSession], integration_id: int, when: dt.datetime | None
) -> None:
    """Pretend the integration's last full listing ran ``when`` (None: never)."""
    async with sessions.begin() as session:
        await session.execute(
            update(NotionIntegration)
            .where(NotionIntegration.id == integration_id)
            .values(full_listing_at=when)
        )


def page_checks(notion: FakeNotion, since: int) -> list[str]:
    """The page ids asked for with GET /v1/pages/{id} since log entry ``since``."""
    return [
        path.rsplit("/", 1)[1] for _, path, _ in notion.log.entries[since:] if "/pages/" in path
    ]


async def test_trashed_deleted_and_unshared_pages_disappear_on_the_next_run(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """The next incremental run re-checks the pages it did not list and deletes the gone ones."""
    integration_id, old = await synced_integration(pool, sync, sessions, notion, old_pages=5)
    notion.clock = lambda: at(10)
    notion.trash(old[0])
    notion.delete(old[1])
    notion.unshare(old[2])
    since = len(notion.log.entries)
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    assert (result["full"], result["rechecked"], result["deleted"]) == (False, 5, 3)
    assert sorted(page_checks(notion, since)) == sorted(old)
    assert await local_titles(sessions, integration_id) == notion.live_titles()


async def test_rechecks_are_bounded_and_go_to_the_pages_confirmed_longest_ago(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """With 2 re-checks per run, a run checks the 2 pages the previous run did not confirm."""
    limited = sync.model_copy(update={"notion_recheck_pages": 2})
    integration_id, old = await synced_integration(pool, limited, sessions, notion, old_pages=4)
    since = len(notion.log.entries)
    await run_sync(pool, limited, "sync_notion_integration", integration_id=integration_id)
    first_checks = page_checks(notion, since)
    assert len(first_checks) == 2
    rest = sorted(set(old) - set(first_checks))
    notion.trash(rest[0])
    since = len(notion.log.entries)
    result = await run_sync(pool, limited, "sync_notion_integration", integration_id=integration_id)
    assert sorted(page_checks(notion, since)) == rest
    assert (result["rechecked"], result["deleted"]) == (2, 1)
    assert await local_titles(sessions, integration_id) == notion.live_titles()


async def test_the_daily_full_listing_deletes_what_it_did_not_see(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """Without re-checks a trashed page stays until the full listing is due; then it goes."""
    unchecked = sync.model_copy(update={"notion_recheck_pages": 0})
    integration_id, old = await synced_integration(pool, unchecked, sessions, notion, old_pages=3)
    notion.trash(old[0])
    result = await run_sync(
        pool, unchecked, "sync_notion_integration", integration_id=integration_id
    )
    assert not result["full"] and old[0] in await local_titles(sessions, integration_id)
    a_day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24, minutes=1)
    await last_full_listing(sessions, integration_id, a_day_ago)
    result = await run_sync(
        pool, unchecked, "sync_notion_integration", integration_id=integration_id
    )
    assert (result["full"], result["deleted"]) == (True, 1)
    assert await local_titles(sessions, integration_id) == notion.live_titles()
    result = await run_sync(
        pool, unchecked, "sync_notion_integration", integration_id=integration_id
    )
    assert not result["full"]  # the next full listing is a day away again


async def test_a_page_edited_during_a_full_listing_is_not_swept(
    pool: JobsPool, sync: Settings, sessions: async_sessionmaker[AsyncSession], notion: FakeNotion
) -> None:
    """A page edited mid-listing jumps ahead of the cursor; the listing looks at the top again."""
    integration_id, old = await synced_integration(pool, sync, sessions, notion, old_pages=5)
    notion.clock = lambda: at(10)
    before = len(notion.log.times("/search"))

    def edit_the_last_page(searches: int) -> None:
        if searches == before + 1:  # the full listing's first request has just been answered
            notion.set_title(old[0], "edited while listed")

    notion.after_search = edit_the_last_page
    await last_full_listing(sessions, integration_id, None)
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    assert result["full"] and result["deleted"] == 0
    titles = await local_titles(sessions, integration_id)
    assert titles == notion.live_titles() and titles[old[0]] == "edited while listed"
