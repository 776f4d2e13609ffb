"""Connecting and disconnecting a user's Notion integration, in the caller's transaction.

Connecting stores the integration's token encrypted and, once the transaction commits,
enqueues its first sync (``sync_notion_integration``). Connecting the same workspace again
updates its token and makes it active again. Disconnecting deletes the integration with its
token and synced pages.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PositiveInt, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.api.accounts import Connection, Disconnection, remove_account, store_account
from jobs.api.validation import ApiModel, checked
from jobs.client import JobsPool
from jobs.db.engine import bind_session
from jobs.db.sync_models import NotionIntegration, NotionPage
from jobs.settings import Settings, get_settings
from jobs.sync.tokens import cipher_from_settings

__all__ = [
    "NotionGrant",
    "connect_notion_integration",
    "disconnect_notion_integration",
]


class NotionGrant(ApiModel):
    """What Notion's OAuth token endpoint answered: the token and the workspace it is for."""

    user_id: PositiveInt
    workspace_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w-]+$")]
    workspace_name: Annotated[str, Field(max_length=200)] = ""
    access_token: Annotated[SecretStr, Field(min_length=1, max_length=4096)]


async def connect_notion_integration(
    session: AsyncSession,
    pool: JobsPool,
    *,
    user_id: int,
    workspace_id: str,
    access_token: str,
    workspace_name: str = "",
    settings: Settings | None = None,
) -> Connection:
    """Store (or update) the user's Notion integration and sync it once the transaction commits.

    Raises :class:`InvalidInputError` (nothing written) for bad input.
    """
    grant = checked(
        NotionGrant,
        {
            "user_id": user_id,
            "workspace_id": workspace_id,
            "workspace_name": workspace_name,
            "access_token": access_token,
        },
    )
    cipher = cipher_from_settings(settings or get_settings())
    await bind_session(session, settings)
    row = {
        "user_id": grant.user_id,
        "workspace_id": grant.workspace_id,
        "workspace_name": grant.workspace_name,
        "token_encrypted": cipher.encrypt(grant.access_token.get_secret_value()),
    }
    return await store_account(
        session,
        pool,
        NotionIntegration,
        row,
        identity=("user_id", "workspace_id"),
        sync_job="sync_notion_integration",
        argument="integration_id",
    )


async def disconnect_notion_integration(
    session: AsyncSession, *, user_id: int, integration_id: int, settings: Settings | None = None
) -> Disconnection:
    """Delete the user's integration ``integration_id``: its token and synced pages.

    Idempotent: an integration already gone answers ``removed=False``; another user's is
    :class:`NotFoundError`.
    """
    await bind_session(session, settings)
    return await remove_account(
        session,
        NotionIntegration,
        account_id=integration_id,
        user_id=user_id,
        synced=(("pages", NotionPage.integration_id),),
    )
