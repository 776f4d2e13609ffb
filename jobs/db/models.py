"""The tables the job families read and write, as typed SQLAlchemy 2.0 models.

A table whose rows belong to one user carries a ``user_id`` column referencing ``users.id``;
that convention is what lets per-user tooling (backups, summaries) find every user-owned
table without naming it.

``users`` and ``user_sessions`` may be the backend's relations rather than the jobs' own (see
:mod:`jobs.db.layout`): the models name only the columns the jobs read.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from jobs.db.base import USER_ID, USER_RELATION, Base, BigId, UtcDateTime, utcnow

__all__ = [
    "Base",
    "EmailStatus",
    "FailedJob",
    "OutboundEmail",
    "User",
    "UserSession",
    "UtcDateTime",
    "utcnow",
]


class User(Base):
    """A user of the assistant: where to reach them and what they want to receive."""

    __tablename__ = "users"
    __table_args__ = USER_RELATION

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    daily_summary_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Only in the jobs' own table; never loaded, so a backend's view need not offer it.
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now(), deferred=True
    )


class UserSession(Base):
    """A login session of the backend's auth; expired ones are deleted by maintenance."""

    __tablename__ = "user_sessions"
    __table_args__ = USER_RELATION

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(USER_ID, ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class EmailStatus(enum.StrEnum):
    """Where an outbound e-mail is in its life."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboundEmail(Base):
    """One e-mail in the outbox, from queued to sent or failed."""

    __tablename__ = "outbound_emails"
    __table_args__ = (Index("ix_outbound_emails_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey(USER_ID, ondelete="CASCADE"), index=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    #: Makes queueing idempotent: a second e-mail with the same key is not queued.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[EmailStatus] = mapped_column(
        Enum(
            EmailStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=EmailStatus.QUEUED,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[dt.datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class FailedJob(Base):
    """A job that failed for good: what ran, with which arguments, and why it failed."""

    __tablename__ = "failed_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(200), index=True)
    job_name: Mapped[str] = mapped_column(String(200), index=True)
    queue: Mapped[str] = mapped_column(String(200))
    arguments: Mapped[dict[str, Any]]
    error_type: Mapped[str] = mapped_column(String(200))
    error_message: Mapped[str] = mapped_column(Text)
    #: ``Type: message`` of the root cause, when the error wraps one (a driver's error).
    error_cause: Mapped[str | None] = mapped_column(String(500))
    tries: Mapped[int] = mapped_column(Integer)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    span_id: Mapped[str | None] = mapped_column(String(16))
    failed_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    #: Set when an operator sent the job back to its queue.
    requeued_job_id: Mapped[str | None] = mapped_column(String(200))
    requeued_at: Mapped[dt.datetime | None]
