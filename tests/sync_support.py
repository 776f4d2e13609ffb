"""Helpers of the sync tests: connected accounts, the DB's view of them, a sync worker run."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.client import JobsPool
from jobs.db import CalendarEvent, GoogleAccount, NotionIntegration, NotionPage, User
from jobs.settings import Settings
from jobs.sync import (
    WorkerSettings,
    cipher_from_settings,
    generate_key,
)
from tests.conftest import make_worker, run_burst
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion

SYNC_JOBS = list(vars(WorkerSettings)["_declared_functions"])
KEY = generate_key()


def sync_settings(
    settings: Settings, google: FakeGoogleCalendar, notion: FakeNotion, **overrides: Any
) -> Settings:
    """Settings pointing the sync jobs at the fakes, with short waits."""
    values: dict[str, Any] = {
        "token_encryption_key": SecretStr(KEY),
        "google_api_base_url": google.base_url,
        "google_token_url": google.token_url,
        "google_client_id": google.client_id,
        "google_client_secret": SecretStr(google.client_secret),
        "notion_api_base_url": notion.base_url,
        "notion_rate_per_second": 1000.0,
        "notion_rate_burst": 1000,
        "sync_backoff_base_seconds": 0.02,
        "http_timeout": 1.0,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


async def add_user(sessions: async_sessionmaker[AsyncSession], email: str) -> int:
    """A user row; its id."""
    async with sessions.begin() as session:
        user = User(email=email)
        session.add(user)
        await session.flush()
        return user.id


async def connect_google(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    google: FakeGoogleCalendar,
    email: str,
    *,
    access_lifetime: float | None = None,
    user_of: int | None = None,
) -> tuple[int, str]:
    """A connected Google account with fresh encrypted tokens; its id and refresh token.

    It belongs to a new user, or to the user of account ``user_of``.
    """
    cipher = cipher_from_settings(settings)
    access, refresh = google.grant(access_lifetime=access_lifetime)
    async with sessions.begin() as session:
        owner = None if user_of is None else await session.get(GoogleAccount, user_of)
    user_id = owner.user_id if owner is not None else await add_user(sessions, email)
    async with sessions.begin() as session:
        account = GoogleAccount(
            user_id=user_id,
            google_email=email,
            access_token_encrypted=cipher.encrypt(access),
            refresh_token_encrypted=cipher.encrypt(refresh),
            token_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
        session.add(account)
        await session.flush()
        return account.id, refresh


async def connect_notion(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, notion: FakeNotion, email: str
) -> int:
    """A connected Notion integration with an encrypted token; its id."""
    user_id = await add_user(sessions, email)
    async with sessions.begin() as session:
        integration = NotionIntegration(
            user_id=user_id, token_encrypted=cipher_from_settings(settings).encrypt(notion.grant())
        )
        session.add(integration)
        await session.flush()
        return integration.id


async def local_events(
    sessions: async_sessionmaker[AsyncSession], account_id: int
) -> dict[str, CalendarEvent]:
    """The account's stored events by remote id."""
    async with sessions() as session:
        rows = await session.scalars(
            select(CalendarEvent).where(CalendarEvent.account_id == account_id)
        )
        return {r.remote_id: r for r in rows}


async def local_titles(
    sessions: async_sessionmaker[AsyncSession], integration_id: int
) -> dict[str, str]:
    """The integration's stored page titles by remote id."""
    async with sessions() as session:
        rows = await session.scalars(
            select(NotionPage).where(NotionPage.integration_id == integration_id)
        )
        return {r.remote_id: r.title for r in rows}


async def run_sync(
    pool: JobsPool, settings: Settings, job: str, workers: int = 1, **kwargs: Any
) -> Any:
    """Enqueue one sync job, run sync workers until the queue is empty; the job's result."""
    import asyncio

    queued = await pool.enqueue_job(job, **kwargs)
    assert queued is not None
    runs = [await make_worker(settings, SYNC_JOBS, family="sync") for _ in range(workers)]
    await asyncio.gather(*(run_burst(w) for w in runs))
    return await queued.result(timeout=1)
