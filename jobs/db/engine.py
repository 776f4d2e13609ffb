"""The backend's async engine and session factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy.ext.asyncio as sa_asyncio
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.settings import Settings

__all__ = ["create_engine", "create_session_factory", "is_postgres"]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_engine(settings: Settings, *, url: str | None = None) -> AsyncEngine:
    """Create the async engine for ``DATABASE_URL`` (or ``url``), ready for concurrent jobs.

    SQLite files get WAL mode, foreign keys and a busy timeout, and their directory is created.
    Statement parameters (recipients, message bodies, tokens) are hidden from error messages,
    which end up in logs, spans and ``failed_jobs``.
    """
    database_url = make_url(url or settings.resolved_database_url)
    if database_url.get_backend_name() == "sqlite":
        if database_url.database and database_url.database != ":memory:":
            Path(database_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa_asyncio.create_async_engine(database_url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # looked up at call time, so the OpenTelemetry instrumentation's wrapper applies
    return sa_asyncio.create_async_engine(
        database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory jobs use; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine_or_session: AsyncEngine | AsyncSession) -> bool:
    """Whether the engine (or the session's bind) talks to PostgreSQL."""
    bind = (
        engine_or_session.bind if isinstance(engine_or_session, AsyncSession) else engine_or_session
    )
    return bind.dialect.name == "postgresql"
