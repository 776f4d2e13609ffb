"""Accounts that fail: retried later if an operator can fix it, left alone if only the user can.

Also: listing and reactivating accounts from the command line, and the worker's start-up check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.cli import main
from jobs.db import AccountState, GoogleAccount, NotionIntegration
from jobs.errors import ConfigurationError
from jobs.settings import Settings, get_settings
from jobs.sync import WorkerSettings, check_sync_settings, cipher_from_settings, generate_key
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import (
    connect_google,
    connect_notion,
    local_events,
    run_sync,
    sync_settings,
)

pytestmark = pytest.mark.usefixtures("engine")

BASE = 900.0  # SYNC_ERROR_RETRY_BASE_SECONDS


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeGoogleCalendar, FakeNotion]]:
    """Both fakes; the Google account's primary calendar has one event."""
    async with FakeGoogleCalendar() as google, FakeNotion() as notion:
        google.put_event("primary", summary="kept")
        yield google, notion


@pytest.fixture
def sync(settings: Settings, fakes: tuple[FakeGoogleCalendar, FakeNotion]) -> Settings:
    """Settings for the sync jobs against the fakes."""
    return sync_settings(settings, *fakes, sync_error_retry_base_seconds=BASE)


async def stored(
    sessions: async_sessionmaker[AsyncSession],
    model: type[GoogleAccount] | type[NotionIntegration],
    account_id: int,
) -> GoogleAccount | NotionIntegration:
    """The account row as stored now."""
    async with sessions() as session:
        row = await session.get(model, account_id)
        assert row is not None
        return row


async def make_due(sessions: async_sessionmaker[AsyncSession], account_id: int) -> None:
    """Let the account's next try come (as if its wait had passed)."""
    async with sessions.begin() as session:
        await session.execute(
            update(GoogleAccount)
            .where(GoogleAccount.id == account_id)
            .values(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )


@pytest.fixture
async def misconfigured(
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
) -> tuple[int, Settings]:
    """A Google account whose access token has expired, and settings with a wrong secret."""
    account_id, _ = await connect_google(
        sessions, sync, fakes[0], "ann@example.com", access_lifetime=0
    )
    return account_id, sync.model_copy(update={"google_client_secret": SecretStr("not-it")})


async def test_a_wrong_client_secret_is_retried_later_and_recovers_once_fixed(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
    misconfigured: tuple[int, Settings],
) -> None:
    """invalid_client puts the account in error; the fan-out retries it ever later, then heals."""
    google, _ = fakes
    account_id, wrong = misconfigured
    waits = []
    for failures in (1, 2):
        fan_out = await run_sync(pool, wrong, "sync_calendar_events")
        assert fan_out == {"accounts": 1, "enqueued": 1}
        account = await stored(sessions, GoogleAccount, account_id)
        assert (account.state, account.failures) == (AccountState.ERROR, failures)
        assert account.last_error == "token refresh failed: HTTP 401 invalid_client"
        assert account.next_attempt_at is not None
        waits.append((account.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds())
        assert await run_sync(pool, wrong, "sync_calendar_events") == {
            "accounts": 0,
            "enqueued": 0,
        }
        await make_due(sessions, account_id)
    assert BASE - 60 < waits[0] <= BASE and 2 * BASE - 60 < waits[1] <= 2 * BASE
    fan_out = await run_sync(pool, sync, "sync_calendar_events")  # the secret is fixed
    assert fan_out == {"accounts": 1, "enqueued": 1}
    account = await stored(sessions, GoogleAccount, account_id)
    assert (account.state, account.failures, account.next_attempt_at) == (
        AccountState.ACTIVE,
        0,
        None,
    )
    assert account.last_error is None and set(await local_events(sessions, account_id)) == set(
        google.live_events()
    )


async def test_an_account_in_error_is_skipped_on_demand_until_its_next_try(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    misconfigured: tuple[int, Settings],
) -> None:
    """A sync asked for before the account's next try answers "skipped" with that time."""
    account_id, wrong = misconfigured
    await run_sync(pool, wrong, "sync_calendar_events")
    account = await stored(sessions, GoogleAccount, account_id)
    result = await run_sync(pool, sync, "sync_calendar_account", account_id=account_id)
    assert account.next_attempt_at is not None
    assert result == {
        "status": "skipped",
        "state": "error",
        "next_attempt_at": account.next_attempt_at.isoformat(),
        "runs": 1,
    }


async def test_a_revoked_notion_token_needs_reconsent_and_is_never_retried(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
) -> None:
    """Notion's 401 sets needs_reconsent; the fan-out leaves it even when a try seems due."""
    _, notion = fakes
    integration_id = await connect_notion(sessions, sync, notion, "ann@example.com")
    notion.tokens.clear()
    result = await run_sync(pool, sync, "sync_notion_integration", integration_id=integration_id)
    assert result["status"] == "needs_reconsent"
    integration = await stored(sessions, NotionIntegration, integration_id)
    assert integration.state is AccountState.NEEDS_RECONSENT
    assert integration.last_error == "Notion search: HTTP 401 unauthorized: API token is invalid."
    async with sessions.begin() as session:
        await session.execute(
            update(NotionIntegration).values(next_attempt_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        )
    assert await run_sync(pool, sync, "sync_notion_pages") == {"accounts": 0, "enqueued": 0}
    assert len(notion.log.entries) == 1


@pytest.fixture
def cli_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment an operator's shell would have, pointing at the test database."""
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("DATABASE_URL", settings.resolved_database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_environment")
async def test_accounts_are_listed_by_state_and_reactivated_from_the_cli(
    pool: JobsPool,
    sync: Settings,
    sessions: async_sessionmaker[AsyncSession],
    fakes: tuple[FakeGoogleCalendar, FakeNotion],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`accounts list --state needs_reconsent` shows the revoked account; `reactivate` heals it."""
    google, _ = fakes
    healthy, _ = await connect_google(sessions, sync, google, "ann@example.com")
    revoked, refresh = await connect_google(
        sessions, sync, google, "bob@example.com", access_lifetime=0
    )
    google.revoke(refresh)
    await run_sync(pool, sync, "sync_calendar_events")
    capsys.readouterr()
    run = asyncio.to_thread
    assert await run(main, ["accounts", "list", "--state", "needs_reconsent"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert line.split()[:4] == ["google", str(revoked), "user=2", "needs_reconsent"]
    assert "invalid_grant" in line
    assert await run(main, ["accounts", "list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2

    _, fresh = google.grant()  # the user connected again; the backend stored the new grant
    async with sessions.begin() as session:
        await session.execute(
            update(GoogleAccount)
            .where(GoogleAccount.id == revoked)
            .values(refresh_token_encrypted=cipher_from_settings(sync).encrypt(fresh))
        )
    assert await run(main, ["accounts", "reactivate", "google", str(revoked)]) == 0
    assert capsys.readouterr().out.startswith(
        f"google account {revoked}: needs_reconsent -> active"
    )
    fan_out = await run_sync(pool, sync, "sync_calendar_events")
    assert fan_out == {"accounts": 2, "enqueued": 2}
    assert (await stored(sessions, GoogleAccount, revoked)).state is AccountState.ACTIVE
    assert set(await local_events(sessions, revoked)) == set(google.live_events())
    assert await run(main, ["accounts", "reactivate", "notion", "99"]) == 2
    assert "no notion account with id 99" in capsys.readouterr().err
    assert (await stored(sessions, GoogleAccount, healthy)).state is AccountState.ACTIVE


def test_the_sync_worker_refuses_to_start_without_the_google_client(settings: Settings) -> None:
    """Without GOOGLE_CLIENT_ID or GOOGLE_CLIENT_SECRET the start-up check names what is missing."""
    keyed = settings.model_copy(update={"token_encryption_key": SecretStr(generate_key())})
    assert vars(WorkerSettings)["settings_check"].__func__ is check_sync_settings
    with pytest.raises(ConfigurationError, match=r"^GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET are"):
        check_sync_settings(keyed)
    only_id = keyed.model_copy(
        update={"google_client_id": "id", "google_client_secret": SecretStr("")}
    )
    with pytest.raises(ConfigurationError, match=r"^GOOGLE_CLIENT_SECRET is not set; the sync"):
        check_sync_settings(only_id)
    check_sync_settings(only_id.model_copy(update={"google_client_secret": SecretStr("s")}))
