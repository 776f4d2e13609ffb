"""Rotating TOKEN_ENCRYPTION_KEY: old keys still decrypt, `tokens rotate` re-encrypts, sync goes on.

The procedure of the operations runbook, step by step: the new key with the old one in
TOKEN_ENCRYPTION_OLD_KEYS, `python -m jobs tokens check` and `rotate`, then the old key dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs import JobsPool
from jobs.cli import main
from jobs.db import GoogleAccount
from jobs.errors import ConfigurationError, PermanentJobError
from jobs.redaction import Redactor
from jobs.settings import Settings, get_settings
from jobs.sync import check_sync_settings, cipher_from_settings, generate_key
from jobs.sync.tokens import KeyOfToken
from jobs.sync.tokens_command import rotate_stored_token
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.notion import FakeNotion
from tests.sync_support import KEY, connect_google, connect_notion, local_events, run_sync
from tests.sync_support import sync_settings as settings_for_fakes

pytestmark = pytest.mark.usefixtures("engine")

NEW_KEY = generate_key()


@pytest.fixture
async def google() -> AsyncIterator[FakeGoogleCalendar]:
    """The Google Calendar fake, its primary calendar holding one event."""
    async with FakeGoogleCalendar() as fake:
        fake.put_event("primary", summary="before the rotation")
        yield fake


@pytest.fixture
async def notion() -> AsyncIterator[FakeNotion]:
    """The Notion fake."""
    async with FakeNotion() as fake:
        yield fake


@pytest.fixture
def old(settings: Settings, google: FakeGoogleCalendar, notion: FakeNotion) -> Settings:
    """Settings before the rotation: TOKEN_ENCRYPTION_KEY is the old key."""
    return settings_for_fakes(settings, google, notion)


def rotated(settings: Settings, *old_keys: str) -> Settings:
    """``settings`` with NEW_KEY current and ``old_keys`` in TOKEN_ENCRYPTION_OLD_KEYS."""
    return settings.model_copy(
        update={
            "token_encryption_key": SecretStr(NEW_KEY),
            "token_encryption_old_keys": SecretStr(",".join(old_keys)) if old_keys else None,
        }
    )


@pytest.fixture
def operator_shell(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An operator's environment during the rotation: the new key, the old one kept."""
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", NEW_KEY)
    monkeypatch.setenv("TOKEN_ENCRYPTION_OLD_KEYS", KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_old_keys_decrypt_and_only_the_current_key_encrypts(old: Settings) -> None:
    """A token made with the old key reads with it in TOKEN_ENCRYPTION_OLD_KEYS, not without."""
    made_before = cipher_from_settings(old).encrypt("refresh-1")
    during = cipher_from_settings(rotated(old, generate_key(), KEY))
    assert during.decrypt(made_before) == "refresh-1"
    assert during.key_of(made_before) is KeyOfToken.OLD
    assert during.key_of(during.encrypt("refresh-2")) is KeyOfToken.CURRENT
    assert during.key_of(during.rotate(made_before)) is KeyOfToken.CURRENT
    with pytest.raises(PermanentJobError, match="TOKEN_ENCRYPTION_OLD_KEYS") as refused:
        cipher_from_settings(rotated(old)).decrypt(made_before)
    assert KEY not in str(refused.value) and NEW_KEY not in str(refused.value)


def test_an_invalid_old_key_stops_the_sync_worker_naming_its_position(old: Settings) -> None:
    """TOKEN_ENCRYPTION_OLD_KEYS=<valid>,oops is refused at start-up as key 2, never echoed."""
    with pytest.raises(
        ConfigurationError, match=r"^TOKEN_ENCRYPTION_OLD_KEYS: key 2 is not a"
    ) as e:
        check_sync_settings(rotated(old, KEY, "oops-not-a-key"))
    assert "oops" not in str(e.value)


def test_every_old_key_is_masked_on_its_own(old: Settings) -> None:
    """Each key of TOKEN_ENCRYPTION_OLD_KEYS is a secret of its own in logs and records."""
    other = generate_key()
    redact = Redactor(rotated(old, KEY, other))
    assert redact(f"echoed {KEY} and {other} and {NEW_KEY}") == "echoed *** and *** and ***"


@pytest.mark.usefixtures("operator_shell")
async def test_rotate_re_encrypts_every_token_and_sync_works_without_the_old_key(
    pool: JobsPool,
    old: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
    notion: FakeNotion,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`tokens check` exits 1 while tokens are under the old key, `rotate` fixes it, sync goes on.

    An unreadable token (made with a key nobody kept) is counted by id, never rewritten, and
    keeps the exit code at 1 until its account is connected again.
    """
    account, _ = await connect_google(sessions, old, google, "ann@example.com")
    integration = await connect_notion(sessions, old, notion, "bob@example.com")
    lost = cipher_from_settings(
        old.model_copy(update={"token_encryption_key": SecretStr(generate_key())})
    ).encrypt("lost")
    stranger, _ = await connect_google(sessions, old, google, "cy@example.com")
    async with sessions.begin() as session:
        await session.execute(
            update(GoogleAccount)
            .where(GoogleAccount.id == stranger)
            .values(access_token_encrypted=lost)
        )
    run = asyncio.to_thread

    assert await run(main, ["tokens", "check"]) == 1
    report = capsys.readouterr().out
    assert "google_accounts.refresh_token_encrypted: 0 on the current key (0 re-encrypted" in report
    assert "2 on an old key, 0 unreadable" in report
    assert (
        "google_accounts.access_token_encrypted: 0 on the current key (0 re-encrypted now), "
        f"1 on an old key, 1 unreadable (ids {stranger})"
    ) in report

    assert await run(main, ["tokens", "rotate"]) == 1
    report = capsys.readouterr().out
    assert (
        "notion_integrations.token_encrypted: 1 on the current key (1 re-encrypted now)" in report
    )
    assert "1 token(s) decrypt with no configured key" in report
    async with sessions() as session:
        assert (
            await session.scalar(
                select(GoogleAccount.access_token_encrypted).where(GoogleAccount.id == stranger)
            )
            == lost
        )

    async with sessions.begin() as session:
        await session.execute(
            update(GoogleAccount)
            .where(GoogleAccount.id == stranger)
            .values(access_token_encrypted=None)
        )
    assert await run(main, ["tokens", "check"]) == 0
    assert capsys.readouterr().out.endswith("every stored token is under TOKEN_ENCRYPTION_KEY\n")

    after = rotated(old)  # the old key dropped everywhere
    assert (await run_sync(pool, after, "sync_calendar_account", account_id=account))[
        "status"
    ] == "synced"
    assert set(await local_events(sessions, account)) == set(google.live_events())
    notion_run = await run_sync(pool, after, "sync_notion_integration", integration_id=integration)
    assert notion_run["status"] == "synced"


async def test_a_token_stored_during_the_rotation_is_never_overwritten(
    old: Settings,
    sessions: async_sessionmaker[AsyncSession],
    google: FakeGoogleCalendar,
) -> None:
    """The rotation read a token, then a sync stored a refreshed one: the fresh one is kept.

    If the fresh token was written by a process still on the old key, it is rotated too.
    """
    during = cipher_from_settings(rotated(old, KEY))
    before = cipher_from_settings(old)
    for fresh, expected in (
        (during.encrypt("fresh-current"), "fresh-current"),
        (before.encrypt("fresh-old"), "fresh-old"),
    ):
        account, _ = await connect_google(sessions, old, google, f"{expected}@example.com")
        async with sessions() as session:
            read = await session.scalar(
                select(GoogleAccount.refresh_token_encrypted).where(GoogleAccount.id == account)
            )
        assert read is not None
        async with sessions.begin() as session:  # the sync's refresh commits first
            await session.execute(
                update(GoogleAccount)
                .where(GoogleAccount.id == account)
                .values(refresh_token_encrypted=fresh)
            )
        async with sessions.begin() as session:  # then the rotation writes what it read
            await rotate_stored_token(
                session, GoogleAccount, "refresh_token_encrypted", account, read, during
            )
        async with sessions() as session:
            stored = await session.scalar(
                select(GoogleAccount.refresh_token_encrypted).where(GoogleAccount.id == account)
            )
        assert stored is not None and during.key_of(stored) is KeyOfToken.CURRENT
        assert during.decrypt(stored) == expected
