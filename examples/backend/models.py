"""The example backend's own tables: its users (which the jobs read) and nothing of the jobs'."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["BackendBase", "Customer"]


class BackendBase(DeclarativeBase):
    """The backend's declarative base: its metadata knows nothing of the jobs' tables."""

    metadata = MetaData()


class Customer(BackendBase):
    """A user of the backend, in its own ``users`` table.

    The columns the jobs read (``id``, ``email``, ``display_name``, ``timezone``,
    ``daily_summary_enabled``) have the names the jobs expect, so no view is needed; the
    backend's own columns (``password_hash``) stay its business.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    daily_summary_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
