"""What the dashboard tests share: settings that enable it, a client, forms' CSRF tokens."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from jobs.db.models import User
from jobs.db.sync_models import AccountState, GoogleAccount
from jobs.settings import Settings

__all__ = [
    "LLM_KEY",
    "PASSWORD",
    "USERNAME",
    "account_state",
    "add_google_account",
    "client_of",
    "csrf_token_in",
    "dashboard_settings",
]

USERNAME = "operator"
PASSWORD = "correct horse battery"
#: A configured secret that must never appear on a page.
LLM_KEY = "sk-dashboard-test-key-0123456789"


def dashboard_settings(settings: Settings, **overrides: object) -> Settings:
    """The test settings with the dashboard on, behind :data:`USERNAME`/:data:`PASSWORD`."""
    values: dict[str, object] = {
        "dashboard_enabled": True,
        "dashboard_username": USERNAME,
        "dashboard_password": SecretStr(PASSWORD),
        "llm_api_key": SecretStr(LLM_KEY),
        "dashboard_jaeger_url": "http://jaeger.test:16686",
    }
    values.update(overrides)
    return settings.model_copy(update=values)


def client_of(
    app: FastAPI, *, auth: tuple[str, str] | None = (USERNAME, PASSWORD)
) -> httpx.AsyncClient:
    """An HTTP client talking to ``app`` in-process, with the dashboard's credentials."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dashboard.test", auth=auth
    )


async def add_google_account(
    sessions: async_sessionmaker[AsyncSession], state: AccountState, error: str | None = None
) -> int:
    """A user with a Google account in ``state``; the account's id."""
    async with sessions.begin() as session:
        user = User(email=f"{state.value}@example.com")
        session.add(user)
        await session.flush()
        account = GoogleAccount(
            user_id=user.id,
            google_email=user.email,
            state=state,
            last_error=error,
            failures=0 if error is None else 3,
        )
        session.add(account)
        await session.flush()
        return account.id


async def account_state(sessions: async_sessionmaker[AsyncSession], account_id: int) -> str:
    """The state of Google account ``account_id`` now."""
    async with sessions() as session:
        account = await session.get(GoogleAccount, account_id)
        assert account is not None
        return account.state.value


def csrf_token_in(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no form with a CSRF token on the page"
    return match.group(1)
