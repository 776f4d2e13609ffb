"""Connected Google Calendar and Notion accounts, and what is synced from them.

Tokens are stored encrypted (``*_encrypted`` columns hold ciphertext made with the key from
the settings), so a database dump alone does not reveal them.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from jobs.db.base import USER_ID, Base, BigId, utcnow

__all__ = [
    "AccountState",
    "CalendarEvent",
    "ConnectedAccount",
    "GoogleAccount",
    "GoogleCalendar",
    "NotionIntegration",
    "NotionPage",
]


class AccountState(enum.StrEnum):
    """Whether a connected account can be synced."""

    ACTIVE = "active"
    NEEDS_RECONSENT = "needs_reconsent"
    ERROR = "error"


class ConnectedAccount:
    """Columns every connected account shares: owner, sync state and its last outcome.

    An account in ``error`` is tried again from ``next_attempt_at`` on, later after each of its
    ``failures`` in a row; ``needs_reconsent`` waits for the user to connect it again.
    """

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_ID, ondelete="CASCADE"), index=True)
    state: Mapped[AccountState] = mapped_column(
        Enum(
            AccountState,
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=AccountState.ACTIVE,
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None]


class GoogleAccount(ConnectedAccount, Base):
    """A user's Google account connected for calendar sync (OAuth tokens, encrypted)."""

    __tablename__ = "google_accounts"
    __table_args__ = (UniqueConstraint("user_id", "google_email"),)

    google_email: Mapped[str] = mapped_column(String(320), default="")
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[dt.datetime | None]
    calendar_list_sync_token: Mapped[str | None] = mapped_column(Text)
    #: Claimed by each listing of the account's calendars (see ``jobs.sync.generation``).
    sync_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class GoogleCalendar(Base):
    """One calendar of a connected account's calendar list, with its incremental-sync token.

    ``failures`` counts the runs in a row that could not read it (``last_error`` says why).
    """

    __tablename__ = "google_calendars"
    __table_args__ = (UniqueConstraint("account_id", "calendar_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_ID, ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("google_accounts.id", ondelete="CASCADE"), index=True
    )
    calendar_id: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="", server_default="")
    sync_token: Mapped[str | None] = mapped_column(Text)
    sync_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_synced_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CalendarEvent(Base):
    """An event synced from Google Calendar.

    Timed events have ``starts_at``/``ends_at`` (UTC); all-day events have ``start_date`` and an
    exclusive ``end_date`` and are never turned into UTC midnights.
    """

    __tablename__ = "calendar_events"
    __table_args__ = (UniqueConstraint("account_id", "calendar_id", "remote_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_ID, ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("google_accounts.id", ondelete="CASCADE"), index=True
    )
    calendar_id: Mapped[str] = mapped_column(String(300))
    remote_id: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    summary: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    html_link: Mapped[str | None] = mapped_column(Text)
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    ends_at: Mapped[dt.datetime | None]
    start_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    recurring_event_id: Mapped[str | None] = mapped_column(String(300))
    original_start: Mapped[str | None] = mapped_column(String(64))
    remote_updated_at: Mapped[dt.datetime | None]
    synced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The calendar's generation whose listing last saw the event.
    sync_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class NotionIntegration(ConnectedAccount, Base):
    """A user's Notion integration (token, encrypted) and the sync watermark."""

    __tablename__ = "notion_integrations"
    __table_args__ = (UniqueConstraint("user_id", "workspace_id"),)

    #: Notion's id of the workspace the integration was granted in (None before it was kept).
    workspace_id: Mapped[str | None] = mapped_column(String(64))
    workspace_name: Mapped[str] = mapped_column(String(200), default="")
    token_encrypted: Mapped[str | None] = mapped_column(Text)
    watermark: Mapped[dt.datetime | None]
    sync_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    #: When the last complete full listing (the one that deletes what it did not see) started.
    full_listing_at: Mapped[dt.datetime | None]


class NotionPage(Base):
    """A page synced from Notion."""

    __tablename__ = "notion_pages"
    __table_args__ = (UniqueConstraint("integration_id", "remote_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_ID, ondelete="CASCADE"), index=True)
    integration_id: Mapped[int] = mapped_column(
        ForeignKey("notion_integrations.id", ondelete="CASCADE"), index=True
    )
    remote_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(Text)
    parent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_time: Mapped[dt.datetime | None]
    last_edited_time: Mapped[dt.datetime | None] = mapped_column(index=True)
    synced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The integration's generation whose listing last saw the page.
    sync_generation: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
