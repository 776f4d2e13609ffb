"""Connecting and disconnecting a user's Google account (Calendar), in the caller's transaction.

Connecting stores the OAuth tokens encrypted with ``TOKEN_ENCRYPTION_KEY`` and, once the
transaction commits, enqueues the account's first sync — ``sync_calendar_account``, which
discovers the account's calendars from its calendar list and syncs each. Connecting the same
address again (a retry, a re-consent) updates that account's tokens and makes it active again.
Disconnecting deletes the account with its tokens, calendars and events.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, Field, PositiveInt, SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from jobs.api.accounts import Connection, Disconnection, remove_account, store_account
from jobs.api.errors import InvalidInputError
from jobs.api.validation import ApiModel, checked
from jobs.client import JobsPool
from jobs.db.base import utcnow
from jobs.db.engine import bind_session
from jobs.db.sync_models import CalendarEvent, GoogleAccount, GoogleCalendar
from jobs.settings import Settings, get_settings
from jobs.sync.tokens import cipher_from_settings

__all__ = [
    "GoogleTokens",
    "connect_google_account",
    "disconnect_google_account",
]

Address = Annotated[
    str,
    Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"),
    AfterValidator(str.lower),  # Google addresses are case-insensitive
]
Token = Annotated[SecretStr, Field(min_length=1, max_length=4096)]


class GoogleTokens(ApiModel):
    """What Google's token endpoint answered when the user consented, for one address."""

    user_id: PositiveInt
    google_email: Address
    access_token: Token
    refresh_token: Token | None = None
    expires_in: Annotated[int, Field(gt=0, le=366 * 24 * 3600)] = 3600


async def connect_google_account(
    session: AsyncSession,
    pool: JobsPool,
    *,
    user_id: int,
    google_email: str,
    access_token: str,
    refresh_token: str | None = None,
    expires_in: int = 3600,
    settings: Settings | None = None,
) -> Connection:
    """Store (or update) the user's Google account and sync it once the transaction commits.

    A refresh token is required the first time an address is connected (Google sends one only
    with ``access_type=offline``); a later connect without one keeps the stored one. Raises
    :class:`InvalidInputError` (nothing written) for bad input, and
    :class:`jobs.errors.ConfigurationError` without a valid ``TOKEN_ENCRYPTION_KEY``.
    """
    tokens = checked(
        GoogleTokens,
        {
            "user_id": user_id,
            "google_email": google_email,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_in": expires_in,
        },
    )
    cipher = cipher_from_settings(settings or get_settings())
    await bind_session(session, settings)
    if tokens.refresh_token is None and not await session.scalar(
        select(GoogleAccount.id).where(
            GoogleAccount.user_id == tokens.user_id,
            GoogleAccount.google_email == tokens.google_email,
        )
    ):
        raise InvalidInputError(
            [
                {
                    "loc": ("refresh_token",),
                    "msg": "required the first time an account is connected",
                }
            ]
        )
    row = {
        "user_id": tokens.user_id,
        "google_email": tokens.google_email,
        "access_token_encrypted": cipher.encrypt(tokens.access_token.get_secret_value()),
        "token_expires_at": utcnow() + dt.timedelta(seconds=tokens.expires_in),
    }
    if tokens.refresh_token is not None:
        row["refresh_token_encrypted"] = cipher.encrypt(tokens.refresh_token.get_secret_value())
    return await store_account(
        session,
        pool,
        GoogleAccount,
        row,
        identity=("user_id", "google_email"),
        sync_job="sync_calendar_account",
        argument="account_id",
    )


async def disconnect_google_account(
    session: AsyncSession, *, user_id: int, account_id: int, settings: Settings | None = None
) -> Disconnection:
    """Delete the user's account ``account_id``: its tokens, calendars and events.

    Idempotent: an account already gone answers ``removed=False``. Another user's account is
    :class:`NotFoundError`. A sync of the account running meanwhile stops at its next write.
    """
    await bind_session(session, settings)
    return await remove_account(
        session,
        GoogleAccount,
        account_id=account_id,
        user_id=user_id,
        synced=(("events", CalendarEvent.account_id), ("calendars", GoogleCalendar.account_id)),
    )
