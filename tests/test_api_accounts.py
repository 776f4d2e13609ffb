"""The service API for connected accounts, called with the backend's own sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from jobs import JobsPool
from jobs.api import (
    Connection,
    InvalidInputError,
    NotFoundError,
    connect_google_account,
    connect_notion_integration,
    disconnect_google_account,
    disconnect_notion_integration,
    request_sync,
    wait_for_enqueues,
)
from jobs.db import (
    AccountState,
    CalendarEvent,
    GoogleAccount,
    GoogleCalendar,
    NotionIntegration,
    NotionPage,
    User,
)
from jobs.settings import Settings
from jobs.sync import cipher_from_settings, generate_key
from tests.conftest import make_worker, run_burst
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import SYNC_JOBS, sync_settings

pytestmark = pytest.mark.usefixtures("engine")

KEYED = {"token_encryption_key": SecretStr(generate_key())}


@pytest.fixture
async def backend(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions of an engine the backend made itself (the API binds them to the jobs' tables)."""
    engine = create_async_engine(settings.resolved_database_url)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    """The settings with a token encryption key."""
    return settings.model_copy(update=KEYED)


async def new_user(sessions: async_sessionmaker[AsyncSession], email: str) -> int:
    """A user; their id."""
    async with sessions.begin() as session:
        user = User(email=email, display_name=email.split("@")[0])
        session.add(user)
        await session.flush()
        return user.id


async def connect(
    session: AsyncSession,
    pool: JobsPool,
    settings: Settings,
    user_id: int,
    address: str,
    access: str = "a",
    refresh: str | None = "r",
) -> Connection:
    """Connect ``address`` for ``user_id`` through the API."""
    return await connect_google_account(
        session,
        pool,
        user_id=user_id,
        google_email=address,
        access_token=access,
        refresh_token=refresh,
        settings=settings,
    )


async def test_connecting_stores_encrypted_tokens_and_enqueues_the_sync_only_after_commit(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    keyed: Settings,
) -> None:
    """Before the commit no job exists; after it the sync job does; a rollback enqueues none."""
    ann = await new_user(sessions, "ann@example.com")
    async with backend() as session:
        connection = await connect(
            session, pool, keyed, ann, "Ann@Gmail.com", "access-1", "refresh-1"
        )
        assert not await pool.exists(f"arq:job:{connection.sync_job_id}")
        await session.commit()
    await wait_for_enqueues()
    job = await pool.job(connection.sync_job_id)
    report = await job.report()
    assert (report.state, report.name) == ("queued", "sync_calendar_account")
    assert connection.created is True

    async with sessions() as session:
        account = await session.get(GoogleAccount, connection.account_id)
    assert account is not None
    assert (account.user_id, account.google_email, account.state) == (
        ann,
        "ann@gmail.com",
        AccountState.ACTIVE,
    )
    cipher = cipher_from_settings(keyed)
    assert account.access_token_encrypted and "access-1" not in account.access_token_encrypted
    assert cipher.decrypt(account.access_token_encrypted) == "access-1"
    assert account.refresh_token_encrypted is not None
    assert cipher.decrypt(account.refresh_token_encrypted) == "refresh-1"

    async with backend() as session:
        rolled_back = await connect(session, pool, keyed, ann, "ann@work.example")
        await session.rollback()
    await wait_for_enqueues()
    assert not await pool.exists(f"arq:job:{rolled_back.sync_job_id}")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GoogleAccount)) == 1


async def test_connecting_again_updates_the_one_account_and_makes_it_active(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    keyed: Settings,
) -> None:
    """A retried connect, and a re-consent without refresh token, keep one account."""
    ann = await new_user(sessions, "ann@example.com")
    ids = []
    for access, refresh in (("a1", "r1"), ("a1", "r1"), ("a2", None)):
        async with backend.begin() as session:
            connection = await connect(session, pool, keyed, ann, "ann@gmail.com", access, refresh)
            ids.append((connection.account_id, connection.created))
        if len(ids) == 2:
            async with sessions.begin() as session:
                account = await session.get(GoogleAccount, connection.account_id)
                assert account is not None
                account.state, account.failures = AccountState.NEEDS_RECONSENT, 3
    assert ids == [(ids[0][0], True), (ids[0][0], False), (ids[0][0], False)]
    async with sessions() as session:
        [account] = list(await session.scalars(select(GoogleAccount)))
    cipher = cipher_from_settings(keyed)
    assert account.access_token_encrypted and account.refresh_token_encrypted
    assert cipher.decrypt(account.access_token_encrypted) == "a2"
    assert cipher.decrypt(account.refresh_token_encrypted) == "r1"  # kept
    assert (account.state, account.failures) == (AccountState.ACTIVE, 0)


async def test_bad_input_is_refused_naming_the_fields_and_nothing_is_written(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    keyed: Settings,
) -> None:
    """A bad address and a NUL in a token, or a first connect without refresh token: refused."""
    ann = await new_user(sessions, "ann@example.com")
    async with backend() as session:
        with pytest.raises(InvalidInputError) as refused:
            await connect_google_account(
                session, pool, user_id=ann, google_email="nobody", access_token="", settings=keyed
            )
        assert [e["loc"] for e in refused.value.errors] == [("google_email",), ("access_token",)]
        with pytest.raises(InvalidInputError, match="access_token: contains a NUL character"):
            await connect_google_account(
                session,
                pool,
                user_id=ann,
                google_email="ann@gmail.com",
                access_token="a\x00b",
                refresh_token="r",
                settings=keyed,
            )
        with pytest.raises(InvalidInputError, match="refresh_token: required the first time"):
            await connect(session, pool, keyed, ann, "ann@gmail.com", refresh=None)
        await session.commit()
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GoogleAccount)) == 0


async def test_disconnecting_removes_tokens_calendars_and_events_of_that_account_only(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    keyed: Settings,
) -> None:
    """The account's rows go, another account's stay; twice is fine; another user's is 404."""
    ann, bob = [await new_user(sessions, f"{n}@example.com") for n in ("ann", "bob")]
    accounts = []
    for user, address in ((ann, "ann@gmail.com"), (ann, "ann@work.example"), (bob, "b@x.org")):
        async with backend.begin() as session:
            connection = await connect(session, pool, keyed, user, address)
        accounts.append(connection.account_id)
        async with sessions.begin() as session:
            calendar = GoogleCalendar(
                user_id=user, account_id=connection.account_id, calendar_id=address
            )
            session.add(calendar)
            for n in range(2):
                session.add(
                    CalendarEvent(
                        user_id=user,
                        account_id=connection.account_id,
                        calendar_id=address,
                        remote_id=f"e{n}",
                    )
                )
    async with backend.begin() as session:
        gone = await disconnect_google_account(session, user_id=ann, account_id=accounts[0])
    assert (gone.removed, gone.deleted) == (True, {"events": 2, "calendars": 1})
    async with backend.begin() as session:
        again = await disconnect_google_account(session, user_id=ann, account_id=accounts[0])
        with pytest.raises(NotFoundError):
            await disconnect_google_account(session, user_id=ann, account_id=accounts[2])
    assert again.removed is False
    async with sessions() as session:
        assert set(await session.scalars(select(GoogleAccount.id))) == set(accounts[1:])
        assert set(await session.scalars(select(CalendarEvent.account_id))) == set(accounts[1:])
        assert await session.scalar(select(func.count()).select_from(GoogleCalendar)) == 2


async def test_the_first_sync_discovers_the_calendars_of_a_connected_account(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    settings: Settings,
) -> None:
    """Connect through the API, commit, run the sync worker: calendars and events are stored."""
    async with FakeGoogleCalendar() as google, FakeNotion() as notion:
        sync = sync_settings(settings, google, notion)
        google.add_calendar("team@group.calendar.google.com", "Team")
        google.put_event("primary", summary="dentist")
        google.put_event("team@group.calendar.google.com", summary="standup")
        access, refresh = google.grant()
        ann = await new_user(sessions, "ann@example.com")
        async with backend.begin() as session:
            connection = await connect_google_account(
                session,
                pool,
                user_id=ann,
                google_email=google.owner,
                access_token=access,
                refresh_token=refresh,
                settings=sync,
            )
        await wait_for_enqueues()
        await run_burst(await make_worker(sync, SYNC_JOBS, family="sync"))
    result = await (await pool.job(connection.sync_job_id)).result(timeout=5)
    assert result["status"] == "synced"
    async with sessions() as session:
        calendars = set(await session.scalars(select(GoogleCalendar.calendar_id)))
        summaries = set(await session.scalars(select(CalendarEvent.summary)))
    assert calendars == {google.owner, "team@group.calendar.google.com"}
    assert summaries == {"dentist", "standup"}


async def test_notion_connect_is_idempotent_and_disconnect_removes_its_pages(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    keyed: Settings,
) -> None:
    """One integration per workspace, its sync after commit; disconnect takes its pages."""
    ann = await new_user(sessions, "ann@example.com")
    results = []
    for token in ("secret_1", "secret_2"):
        async with backend.begin() as session:
            results.append(
                await connect_notion_integration(
                    session,
                    pool,
                    user_id=ann,
                    workspace_id="ws-1",
                    workspace_name="Ann's notes",
                    access_token=token,
                    settings=keyed,
                )
            )
    await wait_for_enqueues()
    assert [(r.account_id, r.created) for r in results] == [
        (results[0].account_id, True),
        (results[0].account_id, False),
    ]
    assert (await (await pool.job(results[1].sync_job_id)).report()).state == "queued"
    integration_id = results[0].account_id
    async with sessions.begin() as session:
        integration = await session.get(NotionIntegration, integration_id)
        assert integration is not None and integration.token_encrypted
        assert cipher_from_settings(keyed).decrypt(integration.token_encrypted) == "secret_2"
        session.add(
            NotionPage(user_id=ann, integration_id=integration_id, remote_id="p1", title="x")
        )
    async with backend.begin() as session:
        gone = await disconnect_notion_integration(
            session, user_id=ann, integration_id=integration_id
        )
    assert (gone.removed, gone.deleted) == (True, {"pages": 1})
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(NotionPage)) == 0
        assert await session.scalar(select(func.count()).select_from(NotionIntegration)) == 0


async def test_request_sync_enqueues_the_users_own_accounts_now(
    backend: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    pool: JobsPool,
    keyed: Settings,
) -> None:
    """Each of the user's accounts gets a sync job at once; another user's account is 404."""
    ann, bob = [await new_user(sessions, f"{n}@example.com") for n in ("ann", "bob")]
    async with backend.begin() as session:
        google = await connect(session, pool, keyed, ann, "ann@gmail.com")
        notion = await connect_notion_integration(
            session, pool, user_id=ann, workspace_id="ws", access_token="t", settings=keyed
        )
        bobs = await connect_notion_integration(
            session, pool, user_id=bob, workspace_id="ws", access_token="t", settings=keyed
        )
    async with backend() as session:
        requested = await request_sync(session, pool, user_id=ann)
        with pytest.raises(NotFoundError):
            await request_sync(
                session, pool, user_id=ann, kind="notion", account_id=bobs.account_id
            )
        with pytest.raises(InvalidInputError, match="kind: required with account_id"):
            await request_sync(session, pool, user_id=ann, account_id=1)
    assert [(r.kind, r.account_id) for r in requested] == [
        ("google", google.account_id),
        ("notion", notion.account_id),
    ]
    for request in requested:
        assert (await (await pool.job(request.job_id)).report()).state == "queued"
