"""The async engine and session factory of the jobs, or the backend's own, bound to their layout.

Every engine the jobs use carries the ``schema_translate_map`` of :mod:`jobs.db.layout`:
:func:`create_engine` builds one from the settings; :func:`bind_engine` adds it to an engine
the backend made (sharing its pool); :func:`bind_session` adds it to the connection of a
session the backend opened, for the statements the jobs run inside its transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy.ext.asyncio as sa_asyncio
from sqlalchemy import FromClause, Table, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from jobs.db.layout import LAYOUT_OPTION, DatabaseLayout, layout_of
from jobs.settings import Settings, get_settings

__all__ = [
    "bind_engine",
    "bind_session",
    "create_engine",
    "create_session_factory",
    "has_relation",
    "is_postgres",
]


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
    The engine is bound to the layout of the settings (:func:`bind_engine`).
    """
    database_url = make_url(url or settings.resolved_database_url)
    if database_url.get_backend_name() == "sqlite":
        if database_url.database and database_url.database != ":memory:":
            Path(database_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa_asyncio.create_async_engine(database_url, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return bind_engine(engine, settings)
    # looked up at call time, so the OpenTelemetry instrumentation's wrapper applies
    engine = sa_asyncio.create_async_engine(
        database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )
    return bind_engine(engine, settings)


def _layout(settings: Settings | None, dialect: str) -> DatabaseLayout:
    return DatabaseLayout.from_settings(settings or get_settings(), dialect)


def _merged_options(current: dict[str, Any], layout: DatabaseLayout) -> dict[str, Any]:
    options = layout.execution_options()
    translate = dict(current.get("schema_translate_map") or {})
    translate.update(options["schema_translate_map"])
    return {**options, "schema_translate_map": translate}


def bind_engine(engine: AsyncEngine, settings: Settings | None = None) -> AsyncEngine:
    """``engine`` (sharing its pool) set up to run the jobs' statements in their schemas.

    For an engine the backend created itself; the backend's own tables are not affected.
    """
    layout = _layout(settings, engine.dialect.name)
    if engine.get_execution_options().get(LAYOUT_OPTION) == layout:
        return engine
    return engine.execution_options(**_merged_options(engine.get_execution_options(), layout))


async def bind_session(session: AsyncSession, settings: Settings | None = None) -> AsyncSession:
    """Let ``session``'s current transaction run the jobs' statements in their schemas.

    Sets the translation on the session's connection (opening it if needed), which lasts for
    the transaction. A session made on a :func:`bind_engine` engine keeps that engine's layout
    unless ``settings`` are given. Returns ``session``.
    """
    connection = await session.connection()
    sync = connection.sync_connection
    current = sync.get_execution_options() if sync is not None else {}
    if settings is None and isinstance(current.get(LAYOUT_OPTION), DatabaseLayout):
        return session
    layout = _layout(settings, connection.dialect.name)
    if current.get(LAYOUT_OPTION) != layout:
        await connection.execution_options(**_merged_options(current, layout))
    return session


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory jobs use; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine_or_session: AsyncEngine | AsyncSession) -> bool:
    """Whether the engine (or the session's bind) talks to PostgreSQL."""
    bind = (
        engine_or_session.bind if isinstance(engine_or_session, AsyncSession) else engine_or_session
    )
    return bind.dialect.name == "postgresql"


async def has_relation(engine: AsyncEngine, table: FromClause) -> bool:
    """Whether the database holds ``table`` (a model's table) as a table or a view."""
    if not isinstance(table, Table):
        raise TypeError(f"{table!r} is not a table")
    layout = layout_of(engine)
    schema = layout.translate_map().get(table.schema, table.schema)
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: inspect(c).has_table(table.name, schema=schema))
